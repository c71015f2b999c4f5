//! `doracost ingest git` over the sample organisation's generated repositories (real bare git
//! repositories, the same shas, times and paths as the ground truth), against that ground truth
//! rebuilt here from the generator.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sample_data::delivery::{Environment, Ids, generate_repo};
use sample_data::org::Org;

use crate::support::{ok, run};

/// The small sample with its git repositories, events ingested; returns the `--repo` arguments.
fn lake_with_events(dir: &Path) -> Vec<String> {
    let out = dir.join("sample");
    let out_s = out.to_str().unwrap();
    ok(
        dir,
        &[
            "sample",
            "generate",
            "--scale",
            "small",
            "--out",
            out_s,
            "--formats",
            "events,focus,git",
        ],
    );
    ok(
        dir,
        &[
            "--config",
            &format!("{out_s}/doracost.toml"),
            "--data-dir",
            "lake",
            "ingest",
            "events",
            &format!("{out_s}/events"),
            "--no-refresh",
        ],
    );
    let mut repos: Vec<String> = std::fs::read_dir(out.join("git/acme"))
        .unwrap()
        .map(|e| e.unwrap().path().to_str().unwrap().to_owned())
        .collect();
    repos.sort();
    repos
}

fn git_args<'a>(dir: &'a str, repos: &'a [String]) -> Vec<&'a str> {
    let mut args = vec![
        "--config",
        dir,
        "--data-dir",
        "lake",
        "ingest",
        "git",
        "--no-refresh",
        "--format",
        "json",
    ];
    for repo in repos {
        args.push("--repo");
        args.push(repo);
    }
    args
}

fn sql_rows(dir: &Path, config: &str, query: &str) -> Vec<serde_json::Value> {
    let out = ok(
        dir,
        &[
            "--config",
            config,
            "--data-dir",
            "lake",
            "sql",
            query,
            "--format",
            "json",
        ],
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn micros_text(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[test]
fn git_history_completes_head_only_deployments_by_the_shipping_rule_on_the_truths_history() {
    let dir = tempfile::tempdir().unwrap();
    let repos = lake_with_events(dir.path());
    let config = dir.path().join("sample/doracost.toml");
    let config = config.to_str().unwrap();

    let report: serde_json::Value =
        serde_json::from_str(&ok(dir.path(), &git_args(config, &repos))).unwrap();
    assert_eq!(report["repos"].as_array().unwrap().len(), 10, "{report}");

    // Ground truth, rebuilt: every commit of every repo, and each DevLake (head-only) production
    // deployment's listed changes.
    let org = Org::plan(sample_data::Scale::Small);
    let mut ids = Ids::default();
    let mut commits: BTreeMap<String, (String, String, Vec<String>)> = BTreeMap::new();
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut total_commits = 0;
    for r in 0..org.repos.len() {
        let history = generate_repo(&org, r, sample_data::DEFAULT_SEED, &mut ids);
        let name = &org.repos[r].name;
        total_commits += history.changes.len();
        for change in &history.changes {
            commits.insert(
                format!("{name}:{}", change.sha),
                (
                    micros_text(change.authored_at),
                    micros_text(change.committed_at),
                    change.paths.clone(),
                ),
            );
        }
        if !org.repos[r].devlake {
            continue;
        }
        // DESIGN §4: a deployment ships the commits between the previous successful production
        // deployment of its service and itself: on `main`'s linear history, the positions after
        // the previous success's head up to its own. (The generator's own lists leave out what
        // a rolled-back deployment shipped once already; those commits are between the rollback's
        // head and the next deployment's, so git lists them again: the views count a change at
        // its first shipment either way.)
        for service in &history.services {
            let mut previous: Option<usize> = None;
            let mut in_order: Vec<_> = service
                .deployments
                .iter()
                .filter(|d| d.environment == Environment::Production)
                .collect();
            in_order.sort_by_key(|d| (d.finished_at, d.id));
            for d in in_order {
                let head = history.git.position[d.head];
                let from = previous.map_or(0, |p| p + 1);
                let mut shas: BTreeSet<String> = (from..=head)
                    .map(|p| history.changes[history.git.order[p]].sha.clone())
                    .collect();
                let listed: BTreeSet<String> = d
                    .changes
                    .iter()
                    .map(|&c| history.changes[c].sha.clone())
                    .collect();
                assert!(
                    listed.is_subset(&shas),
                    "the generator lists a change outside the range"
                );
                // The DevLake payload's head commit is its listed change already.
                shas.insert(history.changes[d.head].sha.clone());
                expected.insert(format!("devlake:deployment:{}", d.id), shas);
                if d.status == sample_data::delivery::Status::Success {
                    previous = Some(head);
                }
            }
        }
    }
    assert!(!expected.is_empty());
    assert_eq!(
        report["commits"].as_u64(),
        Some(total_commits as u64),
        "{report}"
    );

    // Each head-only deployment now lists exactly the changes the ground truth says it shipped.
    let rows = sql_rows(
        dir.path(),
        config,
        "SELECT d.deployment_id, d.commits_listed, dc.change_id FROM deployments d \
         JOIN deployment_changes dc ON dc.deployment_id = d.deployment_id \
         WHERE d.source = 'devlake' ORDER BY 1, 3",
    );
    let mut listed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in &rows {
        assert_eq!(row["commits_listed"], true, "{row}");
        let change = row["change_id"].as_str().unwrap();
        let sha = change.rsplit(':').next().unwrap().to_owned();
        listed
            .entry(row["deployment_id"].as_str().unwrap().to_owned())
            .or_default()
            .insert(sha);
    }
    assert_eq!(listed.len(), expected.len());
    for (id, shas) in &expected {
        assert_eq!(listed.get(id), Some(shas), "deployment {id}");
    }

    // Every commit of every repository is a change with the truth's times and paths.
    let rows = sql_rows(
        dir.path(),
        config,
        "SELECT change_id, authored_at, committed_at, paths FROM changes ORDER BY change_id",
    );
    assert_eq!(rows.len(), commits.len());
    for row in &rows {
        let id = row["change_id"].as_str().unwrap();
        let (authored, committed, paths) = &commits[id];
        assert_eq!(
            row["committed_at"].as_str(),
            Some(committed.as_str()),
            "{id}"
        );
        let mut got: Vec<String> = row["paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_owned())
            .collect();
        got.sort();
        assert_eq!(&got, paths, "{id}");
        // Events name the author time of commits they list; git's author time is the same.
        assert_eq!(row["authored_at"].as_str(), Some(authored.as_str()), "{id}");
    }

    // A second run over unchanged repositories writes nothing.
    let again: serde_json::Value =
        serde_json::from_str(&ok(dir.path(), &git_args(config, &repos))).unwrap();
    assert_eq!(again["commits_read"], 0, "{again}");
    assert_eq!(again["tables"].as_array().map(Vec::len), Some(0), "{again}");
}

#[test]
fn a_path_that_is_not_a_repository_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let repos = lake_with_events(dir.path());
    let config = dir.path().join("sample/doracost.toml");
    let config = config.to_str().unwrap();
    let before = ok(
        dir.path(),
        &[
            "--config",
            config,
            "--data-dir",
            "lake",
            "lake",
            "history",
            "--format",
            "json",
        ],
    );
    let missing = dir.path().join("no-such-repo");
    let mut args = git_args(config, &repos[..1]);
    args.push("--repo");
    args.push(missing.to_str().unwrap());
    let out = run(dir.path(), &args);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no-such-repo") && stderr.contains("not a git repository"),
        "{stderr}"
    );
    let after = ok(
        dir.path(),
        &[
            "--config",
            config,
            "--data-dir",
            "lake",
            "lake",
            "history",
            "--format",
            "json",
        ],
    );
    assert_eq!(before, after, "the lake changed");
}
