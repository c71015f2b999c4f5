//! `doracost ingest github` against the loopback GitHub (`github_server.rs`) serving the small
//! organisation: the lake row for row against the ground truth, the DORA views against the same
//! organisation ingested as events and `ingest git`, conditional reruns, faults and a kill.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sample_data::{DEFAULT_SEED, Format, GenerateOptions, Scale};

use crate::github_server::{Fault, FaultKind, GithubServer};
use crate::support::{doracost, ok, succeeded};

/// The small organisation with events, git and GitHub files.
fn generate(dir: &Path) -> PathBuf {
    let out = dir.join("sample");
    sample_data::generate(&GenerateOptions {
        scale: Scale::Small,
        seed: DEFAULT_SEED,
        out_dir: out.clone(),
        formats: [Format::Events, Format::Focus, Format::Github, Format::Git]
            .into_iter()
            .collect(),
    })
    .unwrap();
    out
}

/// The sample's config with `[sources.github]` (the generated snippet) pointed at `api_url`.
fn github_config(sample: &Path, api_url: &str, timeout_seconds: f64) -> PathBuf {
    let mut text = std::fs::read_to_string(sample.join("doracost.toml")).unwrap();
    let snippet = std::fs::read_to_string(sample.join("github/sources.toml")).unwrap();
    let snippet = snippet.replacen(
        "[sources.github]\n",
        &format!(
            "[sources.github]\napi_url = \"{api_url}\"\nrequest_timeout_seconds = {timeout_seconds:?}\nmax_attempts = 4\n"
        ),
        1,
    );
    assert!(
        snippet.contains(api_url),
        "no [sources.github] in the snippet:\n{snippet}"
    );
    text.push('\n');
    text.push_str(&snippet);
    let path = sample.join(format!(
        "github-{}.toml",
        api_url.rsplit(':').next().unwrap_or("0")
    ));
    std::fs::write(&path, text).unwrap();
    path
}

fn github_args<'a>(config: &'a Path, lake: &'a str, repos: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        lake,
        "ingest",
        "github",
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

fn ingest_github(dir: &Path, config: &Path, lake: &str, repos: &[&str]) -> serde_json::Value {
    let args = github_args(config, lake, repos);
    let out = doracost()
        .current_dir(dir)
        .env("GITHUB_TOKEN", "test-token")
        .args(&args)
        .output()
        .unwrap();
    let text = succeeded(&args, out);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn sql(dir: &Path, config: &Path, lake: &str, query: &str) -> String {
    ok(
        dir,
        &[
            "--config",
            config.to_str().unwrap(),
            "--data-dir",
            lake,
            "sql",
            query,
            "--format",
            "csv",
        ],
    )
}

#[test]
fn dora_views_over_github_equal_those_over_events_and_git() {
    let dir = tempfile::tempdir().unwrap();
    let sample = generate(dir.path());
    let server = GithubServer::start_with_limit(&sample.join("github"), Vec::new(), 1_000_000);
    let config = github_config(&sample, &server.url(), 30.0);

    let report = ingest_github(dir.path(), &config, "gh", &[]);
    assert_eq!(report["requests"]["retries"], 0, "{report}");

    // The same organisation as events, completed by `ingest git`.
    let events = sample.join("events");
    ok(
        dir.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--data-dir",
            "ev",
            "ingest",
            "events",
            events.to_str().unwrap(),
            "--no-refresh",
        ],
    );
    let mut git = vec![
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        "ev",
        "ingest",
        "git",
        "--no-refresh",
    ];
    let repos: Vec<String> = std::fs::read_dir(sample.join("git/acme"))
        .unwrap()
        .map(|e| e.unwrap().path().to_str().unwrap().to_owned())
        .collect();
    for repo in &repos {
        git.push("--repo");
        git.push(repo);
    }
    ok(dir.path(), &git);

    // What each lake says, compared as text. The DevLake repo (acme/inventory) is a repo whose
    // events carry no PR data and no service or start time on its deployments, so only what both
    // sources can say is compared there; acme/reporting records only successful releases.
    let same = |what: &str, github: &str, events: &str| {
        let (a, b) = (
            sql(dir.path(), &config, "gh", github),
            sql(dir.path(), &config, "ev", events),
        );
        if a != b {
            let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
            let only_gh: Vec<_> = la.iter().filter(|l| !lb.contains(l)).take(8).collect();
            let only_ev: Vec<_> = lb.iter().filter(|l| !la.contains(l)).take(8).collect();
            panic!(
                "{what} differs ({} vs {} rows)\nonly github:\n{only_gh:#?}\nonly events:\n{only_ev:#?}",
                la.len(),
                lb.len()
            );
        }
        a.lines().count() - 1
    };
    let deployments = "SELECT repo, lower(environment) AS environment, commit_sha, finished_at, status \
                       FROM deployments";
    let n = same(
        "deployments",
        &format!("{deployments} ORDER BY 1, 2, 3, 4, 5"),
        &format!(
            "{deployments} WHERE NOT (repo = 'acme/reporting' AND status <> 'success') ORDER BY 1, 2, 3, 4, 5"
        ),
    );
    assert!(n > 2900, "{n} deployments");
    let incidents = "SELECT service, started_at, resolved_at, severity, title FROM incidents ORDER BY 1, 2, 3, 4, 5";
    assert_eq!(same("incidents", incidents, incidents), 186);
    let changes = "SELECT change_id, service, lead_time_start, start_kind, deployed_at, coding_hours, \
                   pickup_hours, review_hours, deploy_hours FROM dora_changes WHERE service <> 'inventory' \
                   ORDER BY 1, 2";
    assert!(same("dora_changes", changes, changes) > 5000);
    let shipped =
        "SELECT change_id, deployed_at FROM dora_changes WHERE service = 'inventory' ORDER BY 1";
    same("inventory's shipped changes", shipped, shipped);
    for view in ["dora_monthly", "dora_weekly"] {
        let all = format!(
            "SELECT * FROM {view} WHERE name <> 'inventory' AND scope = 'service' ORDER BY 1, 2, 3, 4, 5"
        );
        same(view, &all, &all);
        let common = format!(
            "SELECT scope, name, period_start, deployments, deploys_per_day, changes_deployed, \
             deployments_with_commit_list, change_failures, change_failure_rate, recoveries, \
             recovery_median_hours, open_recoveries, incidents_resolved, time_to_restore_median_hours, \
             open_incidents, rework_deployments, rework_rate FROM {view} ORDER BY 1, 2, 3"
        );
        same(view, &common, &common);
    }
}

/// Every row of the tables GitHub fills, as text, `ingested_at` left out.
fn lake_rows(dir: &Path, config: &Path, lake: &str) -> String {
    [
        "SELECT deployment_id, service, repo, environment, \"ref\", commit_sha, started_at, finished_at, status, is_rollback, commits_listed FROM deployments ORDER BY 1",
        "SELECT change_id, authored_at, committed_at, paths, pr_number, pr_first_commit_at, pr_opened_at, pr_first_review_at, pr_merged_at, pr_head_branch, labels, incident_refs FROM changes ORDER BY 1",
        "SELECT deployment_id, change_id FROM deployment_changes ORDER BY 1, 2",
        "SELECT incident_id, service, severity, started_at, resolved_at, caused_by_deployment_id, caused_by_sha FROM incidents ORDER BY 1",
    ]
    .iter()
    .map(|q| sql(dir, config, lake, q))
    .collect::<Vec<_>>()
    .join("\n")
}

const REPOS: [&str; 2] = ["acme/search", "acme/identity"];

#[test]
fn faults_are_survived_an_unchanged_rerun_costs_only_304s_and_a_killed_run_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let sample = generate(dir.path());
    let github = sample.join("github");

    // The reference: a run without faults.
    let clean = GithubServer::start_with_limit(&github, Vec::new(), 1_000_000);
    let config = github_config(&sample, &clean.url(), 1.0);
    ingest_github(dir.path(), &config, "clean", &REPOS);
    let reference = lake_rows(dir.path(), &config, "clean");

    // Rate-limit exhaustion with a reset, a secondary limit with retry-after, 502s, a truncated
    // body and an answer slower than the timeout, each on a different route.
    let faults = vec![
        Fault::on(
            "/deployments",
            FaultKind::RateLimitExhausted {
                reset_after: Duration::from_secs(2),
            },
        )
        .after(1)
        .times(1),
        Fault::on(
            "/compare/",
            FaultKind::SecondaryLimit {
                status: 429,
                retry_after: 1,
            },
        )
        .after(2)
        .times(1),
        Fault::on("/pulls", FaultKind::BadGateway).after(3).times(2),
        Fault::on("/commits/{ref}", FaultKind::Truncated)
            .after(5)
            .times(1),
        Fault::on("/statuses", FaultKind::Delay(Duration::from_secs(3)))
            .after(4)
            .times(1),
    ];
    let server = GithubServer::start_with_limit(&github, faults, 1_000_000);
    let config = github_config(&sample, &server.url(), 1.0);
    let report = ingest_github(dir.path(), &config, "faults", &REPOS);
    for i in 0..5 {
        assert!(
            server.counters.fired(i) > 0,
            "fault {i} never fired: {:?}",
            server.counters.by_route()
        );
    }
    let requests = &report["requests"];
    assert!(requests["retries"].as_u64().unwrap() >= 5, "{report}");
    assert!(
        requests["rate_limit_waits"].as_u64().unwrap() >= 2,
        "{report}"
    );
    assert_eq!(
        lake_rows(dir.path(), &config, "faults"),
        reference,
        "faults changed the rows"
    );

    // An unchanged rerun: only conditional requests, all answered 304, and nothing written.
    let before = server.counters.total();
    let again = ingest_github(dir.path(), &config, "faults", &REPOS);
    let requests = &again["requests"];
    assert!(requests["requests"].as_u64().unwrap() > 0, "{again}");
    assert_eq!(requests["requests"], requests["not_modified"], "{again}");
    assert_eq!(
        server.counters.total() - before,
        requests["requests"].as_u64().unwrap()
    );
    assert_eq!(again["tables"].as_array().map(Vec::len), Some(0), "{again}");

    // Killed midway (kill -9 once the first repository has landed), then run again: the same
    // rows as one clean run, none twice.
    let slow = GithubServer::start_with_limit(
        &github,
        vec![Fault::on("*", FaultKind::Delay(Duration::from_millis(20))).times(u64::MAX)],
        1_000_000,
    );
    let config = github_config(&sample, &slow.url(), 5.0);
    let args = github_args(&config, "killed", &REPOS);
    let mut child = doracost()
        .current_dir(dir.path())
        .env("GITHUB_TOKEN", "test-token")
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let history = |lake: &str| {
        let out = doracost()
            .current_dir(dir.path())
            .args([
                "--config",
                config.to_str().unwrap(),
                "--data-dir",
                lake,
                "lake",
                "history",
                "--format",
                "json",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .matches("ingest github")
            .count()
    };
    while history("killed") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "no repository landed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        history("killed"),
        1,
        "the kill came after the last repository: lengthen the delay"
    );
    let config = github_config(&sample, &clean.url(), 1.0);
    ingest_github(dir.path(), &config, "killed", &REPOS);
    assert_eq!(
        lake_rows(dir.path(), &config, "killed"),
        reference,
        "the resumed run differs"
    );
}

#[test]
fn a_route_that_keeps_failing_stops_the_run_with_the_route_named_and_the_lake_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let sample = generate(dir.path());
    let server = GithubServer::start_with_limit(
        &sample.join("github"),
        vec![Fault::on("/deployments", FaultKind::BadGateway).times(u64::MAX)],
        1_000_000,
    );
    let config = github_config(&sample, &server.url(), 1.0);
    let args = github_args(&config, "lake", &["acme/search"]);
    let out = doracost()
        .current_dir(dir.path())
        .env("GITHUB_TOKEN", "test-token")
        .args(&args)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("GET /repos/acme/search/deployments") && stderr.contains("rerun"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("lake/deployments").exists(),
        "something was written"
    );
}

/// The medium organisation from the loopback GitHub, without faults: requests and wall time of a
/// first run, and of a second over unchanged data (issue 17's benchmark). The ingest runs the
/// binary named by `DORACOST_BENCH_BIN` (a release build) when set, else this test build's.
/// `DORACOST_BENCH_BIN=…/release/doracost cargo test --workspace --test e2e -- github::medium --ignored --nocapture`
#[test]
#[ignore = "a benchmark: generates and ingests the medium organisation from the loopback GitHub"]
fn medium_organisation_figures() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sample");
    sample_data::generate(&GenerateOptions {
        scale: Scale::Medium,
        seed: DEFAULT_SEED,
        out_dir: out.clone(),
        formats: [Format::Github].into_iter().collect(),
    })
    .unwrap();
    let server = GithubServer::start_with_limit(&out.join("github"), Vec::new(), u64::MAX / 4);
    let config = github_config(&out, &server.url(), 30.0);
    let bin = std::env::var("DORACOST_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_doracost").to_owned());
    let run = || {
        let args = github_args(&config, "lake", &[]);
        let started = Instant::now();
        let out = std::process::Command::new(&bin)
            .current_dir(dir.path())
            .env("GITHUB_TOKEN", "bench-token")
            .args(&args)
            .output()
            .unwrap();
        let seconds = started.elapsed().as_secs_f64();
        let report: serde_json::Value = serde_json::from_str(&succeeded(&args, out)).unwrap();
        (report, seconds)
    };
    let (first, first_seconds) = run();
    let (second, second_seconds) = run();
    let rows: u64 = first["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["rows_in"].as_u64().unwrap())
        .sum();
    eprintln!(
        "medium from the loopback GitHub ({bin}):\n  first run: {} requests ({} 304), {} rows, {first_seconds:.1} s, peak RSS {} MB\n  \
         second run: {} requests ({} 304), {} tables written, {second_seconds:.1} s\n  by route: {:?}",
        first["requests"]["requests"],
        first["requests"]["not_modified"],
        rows,
        first["peak_rss_bytes"].as_u64().unwrap_or(0) / 1_000_000,
        second["requests"]["requests"],
        second["requests"]["not_modified"],
        second["tables"].as_array().map_or(0, Vec::len),
        server.counters.by_route(),
    );
    assert_eq!(
        second["requests"]["requests"], second["requests"]["not_modified"],
        "{second}"
    );
}
