//! The GitHub files of the small organisation against its ground truth, repo by repo.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

use serde_json::Value;

use super::*;
use crate::calendar::format_timestamp;
use crate::delivery::{Cause, Environment, Ids, Status, generate_repo};
use crate::{DEFAULT_SEED, Scale};

struct Small {
    dir: tempfile::TempDir,
    org: Org,
    histories: Vec<RepoHistory>,
}

fn small() -> &'static Small {
    static SMALL: OnceLock<Small> = OnceLock::new();
    SMALL.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let org = Org::plan(Scale::Small);
        let mut writer = GithubWriter::create(dir.path()).expect("create");
        let mut ids = Ids::default();
        let mut histories = Vec::new();
        for repo in 0..org.repos.len() {
            let history = generate_repo(&org, repo, DEFAULT_SEED, &mut ids);
            // One repo of each kind keeps the test quick (the e2e tests write them all): the
            // deployments API with auto-inactive (checkout), workflow runs (cart), a monorepo
            // (platform) and releases (reporting).
            let name = org.repos[repo].name.as_str();
            if ["acme/checkout", "acme/cart", "acme/platform", RELEASE_REPO].contains(&name) {
                writer.write_repo(&org, &history).expect("write repo");
                histories.push(history);
            }
        }
        writer.finish().expect("finish");
        Small {
            dir,
            org,
            histories,
        }
    })
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("json")
}

fn repo_dir(s: &Small, repo: usize) -> std::path::PathBuf {
    s.dir
        .path()
        .join("github/repos")
        .join(&s.org.repos[repo].name)
}

fn array(v: &Value) -> &Vec<Value> {
    v.as_array().expect("an array")
}

#[test]
fn every_deployment_is_recorded_by_its_repos_signal() {
    let s = small();
    let mut signals = BTreeSet::new();
    for history in &s.histories {
        let dir = repo_dir(s, history.repo);
        let name = &s.org.repos[history.repo].name;
        let truth: Vec<_> = history
            .services
            .iter()
            .flat_map(|x| &x.deployments)
            .collect();
        let deployments = read(&dir.join("deployments.json"));
        let runs = read(&dir.join("actions/runs.json"));
        let releases = read(&dir.join("releases.json"));
        let deploy_runs: Vec<&Value> = array(&runs["workflow_runs"])
            .iter()
            .filter(|r| r["name"] != "CI")
            .collect();
        assert_eq!(
            runs["total_count"].as_u64(),
            Some(array(&runs["workflow_runs"]).len() as u64)
        );
        signals.insert(format!("{:?}", signal(name)));
        let by_id: BTreeMap<u64, _> = truth.iter().map(|d| (d.id, *d)).collect();
        match signal(name) {
            Signal::Deployments => {
                assert_eq!(array(&deployments).len(), truth.len(), "{name}");
                assert!(deploy_runs.is_empty() && array(&releases).is_empty());
                let mut previous = i64::MAX;
                for d in array(&deployments) {
                    let t = by_id[&d["id"].as_u64().unwrap()];
                    let created = d["created_at"].as_str().unwrap();
                    assert_eq!(created, format_timestamp(t.started_at));
                    let at = seconds(created);
                    assert!(at <= previous, "{name}: deployments newest first");
                    previous = at;
                    let env = if t.environment == Environment::Production {
                        "production"
                    } else {
                        "staging"
                    };
                    assert_eq!(d["environment"], env);
                    assert_eq!(d["sha"], history.changes[t.head].sha.as_str());
                    assert_eq!(
                        d["payload"]["service"],
                        s.org.services[t.service].name.as_str()
                    );
                    let statuses = read(&dir.join(format!("deployments/{}/statuses.json", t.id)));
                    let states: Vec<&str> = array(&statuses)
                        .iter()
                        .rev()
                        .map(|x| x["state"].as_str().unwrap())
                        .collect();
                    assert_eq!(&states[..2], ["queued", "in_progress"], "{name} {}", t.id);
                    match t.status {
                        Status::Success => {
                            assert_eq!(states[2], "success");
                            assert!(states.len() == 3 || states[3] == "inactive");
                            let success = array(&statuses)
                                .iter()
                                .find(|x| x["state"] == "success")
                                .unwrap();
                            assert_eq!(
                                success["created_at"],
                                format_timestamp(t.finished_at).as_str()
                            );
                        }
                        Status::Failure => assert_eq!(states, ["queued", "in_progress", "failure"]),
                        Status::Cancelled => {
                            assert_eq!(states, ["queued", "in_progress", "inactive"])
                        }
                    }
                }
            }
            Signal::WorkflowRuns => {
                assert!(array(&deployments).is_empty());
                assert_eq!(deploy_runs.len(), truth.len(), "{name}");
                for run in deploy_runs {
                    let t = by_id[&run["id"].as_u64().unwrap()];
                    let conclusion = match t.status {
                        Status::Success => "success",
                        Status::Failure => "failure",
                        Status::Cancelled => "cancelled",
                    };
                    assert_eq!(run["conclusion"], conclusion);
                    assert_eq!(run["head_sha"], history.changes[t.head].sha.as_str());
                    assert_eq!(
                        run["run_started_at"],
                        format_timestamp(t.started_at).as_str()
                    );
                    assert_eq!(run["updated_at"], format_timestamp(t.finished_at).as_str());
                    let workflow = if t.environment == Environment::Production {
                        DEPLOY_PRODUCTION
                    } else {
                        DEPLOY_STAGING
                    };
                    assert_eq!(run["name"], workflow);
                }
            }
            Signal::Releases => {
                let successes: Vec<_> = truth
                    .iter()
                    .filter(|d| {
                        d.environment == Environment::Production && d.status == Status::Success
                    })
                    .collect();
                assert_eq!(array(&releases).len(), successes.len(), "{name}");
                assert!(
                    successes.len() < truth.len(),
                    "{name} has failures the releases hide"
                );
                for r in array(&releases) {
                    let t = by_id[&r["id"].as_u64().unwrap()];
                    assert_eq!(r["target_commitish"], history.changes[t.head].sha.as_str());
                    assert_eq!(r["published_at"], format_timestamp(t.finished_at).as_str());
                }
            }
        }
    }
    assert_eq!(signals.len(), 3, "{signals:?}");
    let summary = read(&s.dir.path().join("github/summary.json"));
    let superseded: u64 = summary
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["superseded"].as_u64().unwrap())
        .sum();
    assert!(
        superseded > 100,
        "some successes are later inactive: {superseded}"
    );
}

fn seconds(timestamp: &str) -> i64 {
    let field = |range: std::ops::Range<usize>| timestamp[range].parse::<i64>().expect("digits");
    crate::calendar::days_from_civil(field(0..4), field(5..7), field(8..10)) * 86_400
        + field(11..13) * 3600
        + field(14..16) * 60
        + field(17..19)
}

#[test]
fn commits_are_mains_history_newest_first_with_files() {
    let s = small();
    for history in &s.histories {
        let commits = read(&repo_dir(s, history.repo).join("commits.json"));
        let commits = array(&commits);
        assert_eq!(commits.len(), history.changes.len());
        let shas: BTreeSet<&str> = history.changes.iter().map(|c| c.sha.as_str()).collect();
        for pair in commits.windows(2) {
            assert_eq!(
                pair[0]["parents"][0]["sha"], pair[1]["sha"],
                "linear history"
            );
            assert!(
                pair[0]["commit"]["committer"]["date"].as_str()
                    >= pair[1]["commit"]["committer"]["date"].as_str()
            );
        }
        assert_eq!(array(&commits.last().unwrap()["parents"]).len(), 0);
        for c in commits {
            assert!(shas.contains(c["sha"].as_str().unwrap()));
            assert!(!array(&c["files"]).is_empty());
        }
    }
}

#[test]
fn pull_requests_carry_the_truths_times_and_people() {
    let s = small();
    for history in &s.histories {
        let dir = repo_dir(s, history.repo);
        let pulls = read(&dir.join("pulls.json"));
        let by_number: BTreeMap<u64, &Value> = array(&pulls)
            .iter()
            .map(|p| (p["number"].as_u64().unwrap(), p))
            .collect();
        let mut merged = 0;
        for (index, change) in history.changes.iter().enumerate() {
            let Some(pr) = &change.pr else { continue };
            merged += 1;
            let p = by_number[&pr.number];
            let identity = crate::commits::commit_identity(&s.org, history, index);
            let people = identity.pull_request.unwrap();
            assert_eq!(p["merge_commit_sha"], change.sha.as_str());
            assert_eq!(p["merged_at"], format_timestamp(pr.merged_at).as_str());
            assert_eq!(p["created_at"], format_timestamp(pr.opened_at).as_str());
            assert_eq!(p["head"]["ref"], pr.head_branch.as_str());
            assert_eq!(p["user"]["login"], people.author.login.as_str());
            let labels: Vec<&str> = array(&p["labels"])
                .iter()
                .map(|l| l["name"].as_str().unwrap())
                .collect();
            assert_eq!(labels, change.labels);
            let commits = read(&dir.join(format!("pulls/{}/commits.json", pr.number)));
            assert_eq!(
                array(&commits)[0]["commit"]["author"]["date"],
                format_timestamp(pr.first_commit_at).as_str()
            );
            let reviews = read(&dir.join(format!("pulls/{}/reviews.json", pr.number)));
            let first = array(&reviews)
                .iter()
                .find(|r| {
                    r["user"]["type"] != "Bot"
                        && r["user"]["login"] != LINT_ACCOUNT
                        && r["user"]["login"] != p["user"]["login"]
                })
                .unwrap();
            assert_eq!(
                first["submitted_at"],
                format_timestamp(pr.first_review_at).as_str()
            );
            assert_eq!(first["user"]["login"], people.reviewer.login.as_str());
        }
        let unmerged = array(&pulls)
            .iter()
            .filter(|p| p["merged_at"].is_null())
            .count();
        assert_eq!(array(&pulls).len(), merged + unmerged);
    }
}

#[test]
fn incidents_are_labelled_issues_naming_their_cause() {
    let s = small();
    let mut skipped_pulls = 0;
    for history in &s.histories {
        let issues = read(&repo_dir(s, history.repo).join("issues.json"));
        let mut numbers = BTreeSet::new();
        let mut found = BTreeMap::new();
        for issue in array(&issues) {
            assert!(
                numbers.insert(issue["number"].as_u64().unwrap()),
                "numbers are unique"
            );
            let incident = array(&issue["labels"])
                .iter()
                .any(|l| l["name"] == "incident");
            if issue.get("pull_request").is_some() {
                skipped_pulls += u64::from(incident);
                continue;
            }
            if incident {
                let body = issue["body"].as_str().unwrap();
                let key = body
                    .lines()
                    .find_map(|l| l.strip_prefix("Incident: INC-"))
                    .unwrap();
                found.insert(key.parse::<u64>().unwrap(), body.to_string());
            }
        }
        for incident in history.services.iter().flat_map(|x| &x.incidents) {
            let body = &found[&incident.id];
            match incident.cause {
                Cause::Deployment(id) => assert!(
                    body.contains(&format!("\nCaused by deployment {id}\n")),
                    "{body}"
                ),
                Cause::Sha(c) => assert!(
                    body.contains(&format!("\nCaused by commit {}\n", history.changes[c].sha)),
                    "{body}"
                ),
                Cause::Unlinked => assert!(!body.contains("Caused by"), "{body}"),
            }
        }
        assert_eq!(
            found.len(),
            history
                .services
                .iter()
                .map(|x| x.incidents.len())
                .sum::<usize>()
        );
    }
    assert!(skipped_pulls > 0, "some PRs carry the incident label");
}

#[test]
fn webhook_deliveries_are_unique_and_typed() {
    let s = small();
    let text = std::fs::read_to_string(s.dir.path().join("github/webhooks.ndjson")).unwrap();
    let mut ids = BTreeSet::new();
    let mut events = BTreeMap::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(ids.insert(v["delivery"].as_str().unwrap().to_string()));
        assert!(v["payload"]["repository"]["full_name"].is_string());
        *events
            .entry(v["event"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    for event in [
        "deployment",
        "deployment_status",
        "workflow_run",
        "pull_request",
        "push",
        "issues",
        "release",
    ] {
        assert!(
            events.get(event).copied().unwrap_or(0) > 0,
            "{event}: {events:?}"
        );
    }
    let sources = std::fs::read_to_string(s.dir.path().join("github/sources.toml")).unwrap();
    assert!(
        sources
            .contains("[sources.github.deploy_signals.\"acme/cart\"]\nsignal = \"workflow_runs\"")
    );
    assert!(sources.contains("signal = \"releases\""));
}

#[test]
fn webhook_deliveries_tell_what_the_rest_files_say() {
    let s = small();
    let text = std::fs::read_to_string(s.dir.path().join("github/webhooks.ndjson")).unwrap();
    // Per repo and event: the ids each delivery names.
    let mut seen: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let p = &v["payload"];
        let repo = p["repository"]["full_name"].as_str().unwrap().to_string();
        let event = v["event"].as_str().unwrap();
        let (kind, id) = match (event, p["action"].as_str()) {
            ("deployment", _) => ("deployment", p["deployment"]["id"].to_string()),
            ("deployment_status", _) => (
                "status",
                format!(
                    "{}:{}",
                    p["deployment_status"]["id"], p["deployment_status"]["state"]
                ),
            ),
            ("push", _) => {
                let c = &p["head_commit"];
                let mut paths: Vec<&str> = ["added", "modified"]
                    .iter()
                    .flat_map(|k| {
                        c[*k]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|x| x.as_str().unwrap())
                    })
                    .collect();
                paths.sort();
                (
                    "push",
                    format!("{}:{}", p["after"].as_str().unwrap(), paths.join(",")),
                )
            }
            ("pull_request", Some("closed")) if !p["pull_request"]["merged_at"].is_null() => {
                ("merged", p["number"].to_string())
            }
            ("issues", Some("opened")) => ("issue", p["issue"]["number"].to_string()),
            ("workflow_run", Some("completed")) if p["workflow_run"]["name"] != "CI" => (
                "run",
                format!(
                    "{}:{}",
                    p["workflow_run"]["id"],
                    p["workflow_run"]["conclusion"].as_str().unwrap()
                ),
            ),
            ("release", _) => ("release", p["release"]["id"].to_string()),
            _ => continue,
        };
        seen.entry((repo, kind.to_string())).or_default().insert(id);
    }
    for history in &s.histories {
        let name = s.org.repos[history.repo].name.clone();
        let dir = repo_dir(s, history.repo);
        let got = |kind: &str| {
            seen.get(&(name.clone(), kind.to_string()))
                .cloned()
                .unwrap_or_default()
        };
        let ids = |v: &Value, field: &str| -> BTreeSet<String> {
            array(v).iter().map(|x| x[field].to_string()).collect()
        };
        let deployments = read(&dir.join("deployments.json"));
        assert_eq!(got("deployment"), ids(&deployments, "id"), "{name}");
        let mut statuses = BTreeSet::new();
        for d in array(&deployments) {
            let file = read(&dir.join(format!("deployments/{}/statuses.json", d["id"])));
            statuses.extend(
                array(&file)
                    .iter()
                    .map(|x| format!("{}:{}", x["id"], x["state"])),
            );
        }
        assert_eq!(got("status"), statuses, "{name}");
        let commits = read(&dir.join("commits.json"));
        let pushes: BTreeSet<String> = array(&commits)
            .iter()
            .map(|c| {
                let mut paths: Vec<&str> = array(&c["files"])
                    .iter()
                    .map(|f| f["filename"].as_str().unwrap())
                    .collect();
                paths.sort();
                format!("{}:{}", c["sha"].as_str().unwrap(), paths.join(","))
            })
            .collect();
        assert_eq!(got("push"), pushes, "{name}");
        let pulls = read(&dir.join("pulls.json"));
        let merged: BTreeSet<String> = array(&pulls)
            .iter()
            .filter(|p| !p["merged_at"].is_null())
            .map(|p| p["number"].to_string())
            .collect();
        assert_eq!(got("merged"), merged, "{name}");
        let issues = read(&dir.join("issues.json"));
        let real: BTreeSet<String> = array(&issues)
            .iter()
            .filter(|i| i.get("pull_request").is_none())
            .map(|i| i["number"].to_string())
            .collect();
        assert_eq!(got("issue"), real, "{name}");
        let runs = read(&dir.join("actions/runs.json"));
        let deploy_runs: BTreeSet<String> = array(&runs["workflow_runs"])
            .iter()
            .filter(|r| r["name"] != "CI")
            .map(|r| format!("{}:{}", r["id"], r["conclusion"].as_str().unwrap()))
            .collect();
        assert_eq!(got("run"), deploy_runs, "{name}");
        assert_eq!(
            got("release"),
            ids(&read(&dir.join("releases.json")), "id"),
            "{name}"
        );
    }
}
