//! `POST /webhooks/github` against the real `doracost serve` on loopback, with
//! `[sources.github] webhook_secret` set: the small organisation's webhook deliveries
//! (`github/webhooks.ndjson`) of three whole repos — one per deploy signal: acme/inventory
//! (deployments API, with `inactive` after `success`), acme/reporting (releases) and acme/web
//! (deploy workflow runs) — signed as GitHub signs them, and the lake compared row for row with
//! what `doracost ingest github` writes for the same repos from the loopback GitHub
//! (`github_server.rs`). Then signatures (401, nothing written; 404 without a secret), a
//! redelivery (`duplicate`, no new table version), an `inactive` after a `success`, and an
//! acknowledged delivery read back after a kill -9.
//!
//! The other seven repos (27,000 more deliveries, ~4 minutes more of posting to a debug server
//! at ~120 a second) are left out for time; the three cover every deploy signal and every event
//! the route maps. The sample has no revert PR and no `#n` reference: those are unit-tested in
//! `ingest::github::webhook`.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hmac::{KeyInit, Mac};
use sample_data::{DEFAULT_SEED, Format, GenerateOptions, Scale};
use serde_json::{Value, json};

use crate::github_server::GithubServer;
use crate::server::Server;
use crate::support::{HttpResponse, doracost, http_json, http_request, ok, succeeded};

const SECRET: &str = "w3bhook-s3cret";
const SECRET_ENV: &str = "DORACOST_TEST_GITHUB_WEBHOOK_SECRET";
const REPOS: [&str; 3] = ["acme/inventory", "acme/reporting", "acme/web"];
/// Deliveries in flight at once (GitHub sends a push, its runs and a deployment's statuses
/// together); the server commits those that wait together.
const SENDERS: usize = 200;

/// One webhook delivery: `X-GitHub-Event`, `X-GitHub-Delivery` and the body.
#[derive(Debug, Clone)]
struct Delivery {
    event: String,
    id: String,
    payload: Value,
}

impl Delivery {
    fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&self.payload).unwrap()
    }

    fn repo(&self) -> &str {
        self.payload["repository"]["full_name"].as_str().unwrap()
    }

    /// What the delivery is about when its order against others matters: a deployment's
    /// statuses (`inactive` after `success`) and an issue's (`closed` after `opened`) are sent one
    /// after the other; everything else may go at any time.
    fn object(&self) -> String {
        let p = &self.payload;
        match self.event.as_str() {
            "deployment_status" => format!("{}:deployment:{}", self.repo(), p["deployment"]["id"]),
            "issues" => format!("{}:issue:{}", self.repo(), p["issue"]["number"]),
            _ => self.id.clone(),
        }
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`, as GitHub signs deliveries.
fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Posts `body` as delivery `d` with `signature` (none: unsigned).
fn post_raw(port: u16, d: &Delivery, body: &[u8], signature: Option<&str>) -> HttpResponse {
    let mut headers = vec![
        ("X-GitHub-Event", d.event.as_str()),
        ("X-GitHub-Delivery", d.id.as_str()),
    ];
    if let Some(s) = signature {
        headers.push(("X-Hub-Signature-256", s));
    }
    http_request(port, "POST", "/webhooks/github", &headers, body).expect("the server answers")
}

/// Posts `d` signed with the server's secret; its answer, which must be 200.
fn post(port: u16, d: &Delivery) -> Value {
    let body = d.body();
    let r = post_raw(port, d, &body, Some(&signature(SECRET, &body)));
    assert_eq!(r.status, 200, "{} {}: {}", d.event, d.id, r.body);
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body))
}

/// Posts every delivery, `SENDERS` at a time, each object's in file order; the answers.
fn post_all(port: u16, deliveries: &[Delivery]) -> Vec<(Delivery, Value)> {
    let mut chains: Vec<Vec<Delivery>> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for d in deliveries {
        let i = *at.entry(d.object()).or_insert_with(|| {
            chains.push(Vec::new());
            chains.len() - 1
        });
        chains[i].push(d.clone());
    }
    let queue = Arc::new(Mutex::new(chains.into_iter().collect::<VecDeque<_>>()));
    let answers = Arc::new(Mutex::new(Vec::new()));
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (queue, answers) = (queue.clone(), answers.clone());
            std::thread::spawn(move || {
                loop {
                    let Some(chain) = queue.lock().unwrap().pop_front() else {
                        return;
                    };
                    for d in chain {
                        let answer = post(port, &d);
                        answers.lock().unwrap().push((d, answer));
                    }
                }
            })
        })
        .collect();
    for s in senders {
        s.join().expect("a sender panicked");
    }
    Arc::try_unwrap(answers).unwrap().into_inner().unwrap()
}

/// `doracost serve` on a lake that does not exist yet: [`Server`] waits for `/readyz`, which
/// needs an engine over a lake, so this waits for `/healthz` instead. Killed when dropped.
struct NewLakeServer {
    child: std::process::Child,
    port: u16,
}

impl NewLakeServer {
    fn start(dir: &Path, args: &[String]) -> NewLakeServer {
        use std::io::BufRead;
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let mut child = doracost()
            .current_dir(dir)
            .args(args)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--pg-listen",
                "127.0.0.1:0",
            ])
            .env(SECRET_ENV, SECRET)
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        let server = NewLakeServer { child, port };
        let deadline = Instant::now() + std::time::Duration::from_secs(120);
        while !matches!(http_json(port, "GET", "/healthz", ""), Ok((200, _))) {
            assert!(Instant::now() < deadline, "the server did not start");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        server
    }

    /// SIGKILL, as the OOM killer or a failed host would.
    fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NewLakeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A folder removed by an `rm -rf` of its own when dropped, which the test does not wait for:
/// the sample's ~12,000 GitHub files in ~4,000 folders take a minute to delete on some disks,
/// longer than the rest of the test.
struct RemovedLater(PathBuf);

impl Drop for RemovedLater {
    fn drop(&mut self) {
        let removing = std::process::Command::new("rm")
            .arg("-rf")
            .arg(&self.0)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if removing.is_err() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The small organisation's GitHub files and config.
fn generate(dir: &Path) -> PathBuf {
    let out = dir.join("sample");
    sample_data::generate(&GenerateOptions {
        scale: Scale::Small,
        seed: DEFAULT_SEED,
        out_dir: out.clone(),
        formats: [Format::Github].into_iter().collect(),
    })
    .unwrap();
    out
}

/// The sample's config with its `[sources.github]` snippet pointed at `api_url`, and the webhook
/// secret read from `SECRET_ENV` when `secret`.
fn config(sample: &Path, api_url: &str, secret: bool) -> PathBuf {
    let mut text = std::fs::read_to_string(sample.join("doracost.toml")).unwrap();
    let snippet = std::fs::read_to_string(sample.join("github/sources.toml")).unwrap();
    let mut table = format!("[sources.github]\napi_url = \"{api_url}\"\n");
    if secret {
        table.push_str(&format!("webhook_secret = {{ env = \"{SECRET_ENV}\" }}\n"));
    }
    let snippet = snippet.replacen("[sources.github]\n", &table, 1);
    assert!(snippet.contains(api_url), "no [sources.github]:\n{snippet}");
    text.push('\n');
    text.push_str(&snippet);
    let path = sample.join(if secret {
        "webhooks.toml"
    } else {
        "no-secret.toml"
    });
    std::fs::write(&path, text).unwrap();
    path
}

/// `doracost --config CONFIG --data-dir LAKE ARGS…`, which must succeed; its stdout.
fn run(dir: &Path, config: &Path, lake: &str, args: &[&str]) -> String {
    let mut all = vec!["--config", config.to_str().unwrap(), "--data-dir", lake];
    all.extend(args);
    ok(dir, &all)
}

/// `sql --format csv`: the rows as lines, header dropped.
fn rows(dir: &Path, config: &Path, lake: &str, query: &str) -> Vec<String> {
    run(dir, config, lake, &["sql", "--format", "csv", query])
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

/// `lake history --format json`: the log's entries with their table versions.
fn history(dir: &Path, config: &Path, lake: &str) -> String {
    run(dir, config, lake, &["lake", "history", "--format", "json"])
}

/// Asserts that every row of `api` is in `webhook` (and, when `equal`, nothing else); the number
/// of rows both have.
fn contained(what: &str, api: &[String], webhook: &[String], equal: bool) -> usize {
    let have: BTreeSet<&String> = webhook.iter().collect();
    let missing: Vec<&String> = api.iter().filter(|r| !have.contains(r)).collect();
    let extra: Vec<&String> = if equal {
        let want: BTreeSet<&String> = api.iter().collect();
        webhook.iter().filter(|r| !want.contains(r)).collect()
    } else {
        Vec::new()
    };
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {} of {} API rows not written by the webhook, {} webhook rows not in the API's\n\
         only API:\n{:#?}\nonly webhook:\n{:#?}",
        missing.len(),
        api.len(),
        extra.len(),
        missing.iter().take(8).collect::<Vec<_>>(),
        extra.iter().take(8).collect::<Vec<_>>()
    );
    api.len()
}

#[test]
fn deliveries_write_what_the_api_ingest_writes_signed_once_durably() {
    let started = Instant::now();
    let dir = RemovedLater(tempfile::tempdir().unwrap().keep());
    let dir = dir.0.as_path();
    let sample = generate(dir);
    let github = GithubServer::start_with_limit(&sample.join("github"), Vec::new(), 1_000_000);
    let config = config(&sample, &github.url(), true);

    // The reference: `ingest github` of the same repos from the loopback GitHub.
    let mut all = vec![
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        "api",
        "ingest",
        "github",
        "--no-refresh",
    ];
    for repo in REPOS {
        all.extend(["--repo", repo]);
    }
    let out = doracost()
        .current_dir(dir)
        .env("GITHUB_TOKEN", "test-token")
        .args(&all)
        .output()
        .unwrap();
    succeeded(&all, out);

    let text = std::fs::read_to_string(sample.join("github/webhooks.ndjson")).unwrap();
    let deliveries: Vec<Delivery> = text
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            Delivery {
                event: v["event"].as_str().unwrap().to_owned(),
                id: v["delivery"].as_str().unwrap().to_owned(),
                payload: v["payload"].clone(),
            }
        })
        .filter(|d| REPOS.contains(&d.repo()))
        .collect();

    let global: Vec<String> = ["--config", config.to_str().unwrap(), "--data-dir", "wh"]
        .map(str::to_owned)
        .to_vec();
    let server = NewLakeServer::start(dir, &global);
    let port = server.port;

    // Unsigned, signed with another secret, or changed after signing: 401, nothing written.
    let push = deliveries.iter().find(|d| d.event == "push").unwrap();
    let body = push.body();
    let unsigned = post_raw(port, push, &body, None);
    assert_eq!(unsigned.status, 401, "{}", unsigned.body);
    let wrong = post_raw(port, push, &body, Some(&signature("not-the-secret", &body)));
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let mut changed = push.payload.clone();
    changed["commits"][0]["timestamp"] = json!("2020-01-01T00:00:00Z");
    let changed = serde_json::to_vec(&changed).unwrap();
    let tampered = post_raw(port, push, &changed, Some(&signature(SECRET, &body)));
    assert_eq!(tampered.status, 401, "{}", tampered.body);
    assert!(!wrong.body.contains(SECRET), "the secret is never echoed");
    for table in ["ingest_state", "changes", "deployments", "_commits"] {
        assert!(
            !dir.join("wh").join(table).exists(),
            "a refused delivery wrote {table}"
        );
    }

    // Every delivery of the three repos: 200 each, none taken for a redelivery.
    let posting = Instant::now();
    let answers = post_all(port, &deliveries);
    let seconds = posting.elapsed().as_secs_f64();
    assert_eq!(answers.len(), deliveries.len());
    for (d, answer) in &answers {
        assert_eq!(answer["duplicate"], false, "{} {}: {answer}", d.event, d.id);
        assert_eq!(answer["delivery"], d.id.as_str());
    }
    let shared: u64 = answers
        .iter()
        .map(|(_, a)| a["commit"]["deliveries"].as_u64().unwrap())
        .sum();
    eprintln!(
        "github_webhooks: {} deliveries posted in {seconds:.1} s ({:.0}/s; a delivery shared \
         its commit with {:.0} others on average)",
        answers.len(),
        answers.len() as f64 / seconds,
        shared as f64 / answers.len() as f64 - 1.0
    );

    // A redelivery (same X-GitHub-Delivery): `duplicate`, and no table gets a new version.
    let (pushed, first) = answers
        .iter()
        .find(|(d, a)| d.event == "push" && a["rows"].as_u64() > Some(0))
        .unwrap();
    let before = history(dir, &config, "wh");
    let again = post(port, pushed);
    assert_eq!(again["duplicate"], true, "{again} after {first}");
    assert_eq!(again["rows"], 0, "{again}");
    assert_eq!(history(dir, &config, "wh"), before, "a redelivery wrote");

    // `inactive` after `success`: a past success stays one (DESIGN §4). A deployment of the
    // corpus that succeeded gets a late `inactive`; a new one gets both, one after the other;
    // a third, only `inactive`, is cancelled. (Read back below.)
    let success = answers
        .iter()
        .map(|(d, _)| d)
        .find(|d| {
            d.repo() == "acme/inventory"
                && d.event == "deployment_status"
                && d.payload["deployment_status"]["state"] == "success"
        })
        .unwrap();
    let status = |id: &str, deployment: u64, state: &str, at: &str| {
        let mut d = success.clone();
        d.id = id.to_owned();
        d.payload["deployment"]["id"] = json!(deployment);
        d.payload["deployment_status"]["state"] = json!(state);
        d.payload["deployment_status"]["created_at"] = json!(at);
        d.payload["deployment_status"]["id"] = json!(deployment * 10 + 7);
        d
    };
    let corpus = success.payload["deployment"]["id"].as_u64().unwrap();
    let (new, cancelled) = (990_000_001, 990_000_002);
    let late = status("late-inactive", corpus, "inactive", "2031-01-01T00:00:00Z");
    assert_eq!(post(port, &late)["rows"], 0, "the late inactive wrote");
    post(
        port,
        &status("new-success", new, "success", "2031-01-01T10:00:00Z"),
    );
    let inactive = post(
        port,
        &status("new-inactive", new, "inactive", "2031-01-02T10:00:00Z"),
    );
    assert_eq!(inactive["rows"], 0, "{inactive}");
    post(
        port,
        &status(
            "only-inactive",
            cancelled,
            "inactive",
            "2031-01-03T10:00:00Z",
        ),
    );

    // Durable before the 2xx: killed -9 right after the answer.
    let opened = answers
        .iter()
        .map(|(d, _)| d)
        .find(|d| {
            d.event == "issues"
                && d.payload["issue"]["labels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|l| l["name"] == "incident")
        })
        .unwrap();
    let mut last = opened.clone();
    last.id = "acknowledged-then-killed".into();
    last.payload["issue"]["number"] = json!(99_001);
    last.payload["issue"]["title"] = json!("Killed right after the 200");
    let answer = post(port, &last);
    assert_eq!(answer["rows"], 1, "{answer}");
    server.kill_hard();
    let killed = format!("github:{}:issue:99001", last.repo());

    // Without a webhook secret the route is off: 404, whatever the signature.
    let before = history(dir, &config, "wh");
    let off_config = self::config(&sample, &github.url(), false);
    let off_args: Vec<String> = ["--config", off_config.to_str().unwrap(), "--data-dir", "wh"]
        .map(str::to_owned)
        .to_vec();
    let off = Server::start_with_env(dir, &off_args, &[(SECRET_ENV, SECRET)]);
    let mut fresh = push.clone();
    fresh.id = "while-off".into();
    let body = fresh.body();
    let refused = post_raw(off.port, &fresh, &body, Some(&signature(SECRET, &body)));
    assert_eq!(refused.status, 404, "{}", refused.body);
    drop(off);
    assert_eq!(history(dir, &config, "wh"), before, "written while off");

    // The lake, read with the server gone. The acknowledged delivery is in it.
    assert_eq!(
        rows(
            dir,
            &config,
            "wh",
            &format!("SELECT title FROM incidents WHERE incident_id = '{killed}'")
        ),
        ["Killed right after the 200"]
    );
    // The success stayed one; `inactive` alone is a cancellation.
    let id = |n: u64| format!("github:acme/inventory:deployment:{n}");
    let held = rows(
        dir,
        &config,
        "wh",
        &format!(
            "SELECT deployment_id, status, finished_at FROM deployments \
             WHERE deployment_id IN ('{}', '{}', '{}') ORDER BY 1",
            id(corpus),
            id(new),
            id(cancelled)
        ),
    );
    let success_at = success.payload["deployment_status"]["created_at"]
        .as_str()
        .unwrap();
    assert_eq!(
        held,
        [
            format!("{},success,{success_at}", id(corpus)),
            format!("{},success,2031-01-01T10:00:00Z", id(new)),
            format!("{},cancelled,2031-01-03T10:00:00Z", id(cancelled)),
        ]
    );

    // The rest, against the API ingest's lake, on what both carry; the counts as the sample's
    // summary has them. The deliveries made up above are left out.
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(sample.join("github/summary.json")).unwrap())
            .unwrap();
    let summed = |fields: &[&str]| -> usize {
        let mut n = 0;
        for repo in REPOS {
            for field in fields {
                n += summary[repo][field].as_u64().unwrap() as usize;
            }
        }
        n
    };
    let both = |what: &str, query: &str, equal: bool| {
        contained(
            what,
            &rows(dir, &config, "api", query),
            &rows(dir, &config, "wh", query),
            equal,
        )
    };
    let made_up = format!("'{}', '{}'", id(new), id(cancelled));
    // Deployments, from `deployment_status`, `workflow_run` and `release` deliveries: every
    // field but the URL (the API takes the first status that has one, a delivery has its own
    // status's) and `commits_listed` (a delivery names only the head commit).
    let deployments = both(
        "deployments",
        &format!(
            "SELECT deployment_id, source, service, repo, environment, \"ref\", commit_sha, \
             started_at, finished_at, status, is_rollback FROM deployments \
             WHERE deployment_id NOT IN ({made_up}) ORDER BY 1"
        ),
        true,
    );
    assert_eq!(
        deployments,
        summed(&["deployments", "deploy_runs", "releases"])
    );
    // Incidents, from `issues` deliveries (labelled `incident`, their cause read from the body).
    let incidents = both(
        "incidents",
        &format!(
            "SELECT incident_id, source, service, title, severity, started_at, resolved_at, \
             caused_by_deployment_id, caused_by_sha, url FROM incidents \
             WHERE incident_id <> '{killed}' ORDER BY 1"
        ),
        true,
    );
    assert_eq!(incidents, summed(&["incident_issues"]));
    // Commit times and files, from `push` deliveries. The webhook lake has more commits: every
    // commit pushed, where the API ingest reads only those a deployment shipped. Author times
    // are not in a push.
    let changes = both(
        "changes' commit times and paths",
        "SELECT change_id, repo, sha, committed_at, paths FROM changes ORDER BY 1",
        false,
    );
    assert!(changes > 500, "{changes} changes");
    // Merged pull requests, from `pull_request` `closed` deliveries. The first commit and the
    // first review are not in a delivery (they need the PR's commits and reviews).
    let pulls = both(
        "changes' pull requests",
        "SELECT change_id, pr_number, pr_opened_at, pr_merged_at, pr_head_branch, labels, \
         incident_refs FROM changes WHERE pr_number IS NOT NULL ORDER BY 1",
        false,
    );
    assert!(pulls > 400, "{pulls} pull requests");
    // What a deployment shipped: a delivery names its head commit only. The API ingest lists it
    // too, unless the deployment shipped nothing new: a redeploy of a commit an earlier success
    // shipped (its compare is empty).
    let heads = format!(
        "SELECT l.deployment_id, l.change_id FROM deployment_changes l \
                 JOIN deployments d ON d.deployment_id = l.deployment_id \
                 JOIN changes c ON c.change_id = l.change_id \
                 WHERE c.sha = d.commit_sha AND d.deployment_id NOT IN ({made_up}) ORDER BY 1, 2"
    );
    let api_heads = rows(dir, &config, "api", &heads);
    let webhook_heads = rows(dir, &config, "wh", &heads);
    contained("head commits shipped", &api_heads, &webhook_heads, false);
    assert_eq!(webhook_heads.len(), deployments, "one head per deployment");
    let redeploys = rows(
        dir,
        &config,
        "api",
        "SELECT count(DISTINCT d.deployment_id) FROM deployments d JOIN deployments p \
         ON p.service = d.service AND p.environment = d.environment \
         AND p.commit_sha = d.commit_sha AND p.status = 'success' AND p.started_at < d.started_at",
    );
    let headless = deployments - api_heads.len();
    assert!(
        headless > 0 && redeploys == [headless.to_string()],
        "{headless} {redeploys:?}"
    );
    eprintln!(
        "github_webhooks: {} deliveries of {REPOS:?}; {deployments} deployments, {incidents} \
         incidents, {changes} commits, {pulls} pull requests as the API ingest has them; the \
         whole test took {:.0} s",
        deliveries.len(),
        started.elapsed().as_secs_f64()
    );
}
