//! The small organisation's GitHub files through the loopback GitHub server
//! (`github_server.rs`), read with a plain HTTP client: pagination, compare, conditional requests,
//! the fault script, and the files' counts against the ground truth.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sample_data::delivery::{Environment, Ids, RepoHistory, Status, generate_repo};
use sample_data::org::Org;
use sample_data::truth::Truth;
use sample_data::writers::github::{Signal, signal};
use sample_data::{DEFAULT_SEED, Format, GenerateOptions, Scale};
use serde_json::Value;

use crate::github_server::{Fault, FaultKind, GithubServer};

/// The small organisation with its GitHub files, generated once for the module.
struct Sample {
    dir: tempfile::TempDir,
    org: Org,
    histories: Vec<RepoHistory>,
    truth: Truth,
}

impl Sample {
    fn github(&self) -> PathBuf {
        self.dir.path().join("github")
    }
}

fn sample() -> &'static Sample {
    static SAMPLE: OnceLock<Sample> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let report = sample_data::generate(&GenerateOptions {
            scale: Scale::Small,
            seed: DEFAULT_SEED,
            out_dir: dir.path().to_path_buf(),
            formats: [Format::Github].into_iter().collect(),
        })
        .unwrap();
        assert!(
            !dir.path().join("events").exists(),
            "only the formats asked for"
        );
        let org = Org::plan(Scale::Small);
        let mut ids = Ids::default();
        let histories = (0..org.repos.len())
            .map(|repo| generate_repo(&org, repo, DEFAULT_SEED, &mut ids))
            .collect();
        Sample {
            dir,
            org,
            histories,
            truth: report.truth,
        }
    })
}

/// An answer read off the socket, whole or not.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The `rel="next"` link's path and query.
    fn next(&self) -> Option<String> {
        let link = self.header("link")?;
        link.split(", ").find_map(|part| {
            let (url, rel) = part.split_once("; ")?;
            (rel == "rel=\"next\"").then(|| {
                let url = url.trim_matches(['<', '>']);
                let path = url.split_once("://").map_or(url, |(_, rest)| rest);
                path[path.find('/').unwrap_or(0)..].to_string()
            })
        })
    }
}

/// One GET with `headers` (a token unless one is given), answered within `timeout`.
fn get_with(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> std::io::Result<Reply> {
    request(port, "GET", path, headers, timeout)
}

/// One request without a body.
fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(timeout))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/vnd.github+json\r\nContent-Length: 0\r\nConnection: close\r\n"
    );
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("authorization"))
    {
        head.push_str("Authorization: Bearer sample-token\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // A cut connection ends the answer where it was cut.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(e),
        }
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header block"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v == "chunked")
    {
        body = dechunk(&body);
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&raw[..end]).trim(), 16).unwrap_or(0);
        if size == 0 || raw.len() < end + 2 + size {
            out.extend_from_slice(&raw[(end + 2).min(raw.len())..]);
            break;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[(end + 4 + size).min(raw.len())..];
    }
    out
}

fn get(port: u16, path: &str) -> Reply {
    get_with(port, path, &[], Duration::from_secs(60)).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Every element of a list, page after page by the `link` header; the pages fetched.
fn walk(port: u16, first: &str, field: Option<&str>) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut next = Some(first.to_string());
    let mut pages = 0;
    while let Some(path) = next {
        let reply = get(port, &path);
        assert_eq!(
            reply.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        let json = reply.json();
        let list = match field {
            Some(f) => json[f].clone(),
            None => json,
        };
        items.extend(list.as_array().cloned().unwrap_or_default());
        pages += 1;
        next = reply.next();
    }
    (items, pages)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Main's commits of a repo, oldest first, as the writer orders them.
fn main_shas(history: &RepoHistory) -> Vec<&str> {
    let mut main: Vec<usize> = (0..history.changes.len()).collect();
    main.sort_by_key(|&c| (history.changes[c].committed_at, c));
    main.iter()
        .map(|&c| history.changes[c].sha.as_str())
        .collect()
}

#[test]
fn pagination_walks_the_whole_deployments_list() {
    let s = sample();
    let server = GithubServer::start(&s.github(), Vec::new());
    let history = &s.histories[0];
    let name = &s.org.repos[history.repo].name;
    assert_eq!(signal(name), Signal::Deployments);
    let truth: BTreeSet<u64> = history
        .services
        .iter()
        .flat_map(|x| x.deployments.iter().map(|d| d.id))
        .collect();
    assert!(truth.len() > 250, "{name}: {} deployments", truth.len());

    let first = get(
        server.port,
        &format!("/repos/{name}/deployments?per_page=100"),
    );
    let link = first.header("link").unwrap().to_string();
    assert!(
        link.starts_with(&format!("<{}/repos/{name}/deployments?", server.url())),
        "{link}"
    );
    let last = truth.len().div_ceil(100);
    assert!(
        link.contains("rel=\"next\"") && link.contains(&format!("page={last}>; rel=\"last\"")),
        "{link}"
    );
    let (items, pages) = walk(
        server.port,
        &format!("/repos/{name}/deployments?per_page=100"),
        None,
    );
    assert_eq!(pages, last);
    let ids: Vec<u64> = items.iter().map(|d| d["id"].as_u64().unwrap()).collect();
    let file = read_json(&s.github().join("repos").join(name).join("deployments.json"));
    let listed: Vec<u64> = file
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_u64().unwrap())
        .collect();
    assert_eq!(
        ids, listed,
        "the pages, in order, are the whole list, newest first"
    );
    assert_eq!(ids.iter().copied().collect::<BTreeSet<_>>(), truth);

    // The default page is 30, and filters apply before paging.
    assert_eq!(
        get(server.port, &format!("/repos/{name}/deployments"))
            .json()
            .as_array()
            .unwrap()
            .len(),
        30
    );
    let (production, _) = walk(
        server.port,
        &format!("/repos/{name}/deployments?environment=production&per_page=100"),
        None,
    );
    let expected = history
        .services
        .iter()
        .flat_map(|x| &x.deployments)
        .filter(|d| d.environment == Environment::Production)
        .count();
    assert_eq!(production.len(), expected);
    assert_eq!(
        server
            .counters
            .requests("/repos/{owner}/{repo}/deployments") as usize,
        1 + pages + 1 + production.len().div_ceil(100)
    );
    // Enterprise's base path.
    assert_eq!(
        get(
            server.port,
            &format!("/api/v3/repos/{name}/deployments?per_page=1")
        )
        .status,
        200
    );
}

#[test]
fn compare_of_300_commits_over_3_pages_equals_the_truths_commits_between_two_deployments() {
    let s = sample();
    let server = GithubServer::start(&s.github(), Vec::new());
    // Two successful production deployments of one single-service repo, 300 commits apart.
    let mut found = None;
    'repos: for history in &s.histories {
        let name = &s.org.repos[history.repo].name;
        if signal(name) != Signal::Deployments || history.services.len() != 1 {
            continue;
        }
        let main = main_shas(history);
        let position: BTreeMap<&str, usize> =
            main.iter().enumerate().map(|(i, s)| (*s, i)).collect();
        let mut shipped: Vec<_> = history.services[0]
            .deployments
            .iter()
            .filter(|d| {
                d.environment == Environment::Production
                    && d.status == Status::Success
                    && !d.is_rollback
                    && !d.is_redeploy
            })
            .collect();
        shipped.sort_by_key(|d| (d.finished_at, d.id));
        for (i, base) in shipped.iter().enumerate() {
            for head in &shipped[i + 1..] {
                let b = position[history.changes[base.head].sha.as_str()];
                let h = position[history.changes[head.head].sha.as_str()];
                if h == b + 300 {
                    found = Some((history, base.id, head.id, b, h));
                    break 'repos;
                }
            }
        }
    }
    let (history, base_id, head_id, b, h) = found.expect("two deployments 300 commits apart");
    let name = &s.org.repos[history.repo].name;
    let main = main_shas(history);
    let (base, head) = (main[b], main[h]);

    let path = format!("/repos/{name}/compare/{base}...{head}?per_page=100");
    let first = get(server.port, &path).json();
    assert_eq!(
        (
            first["status"].as_str(),
            first["ahead_by"].as_u64(),
            first["total_commits"].as_u64()
        ),
        (Some("ahead"), Some(300), Some(300))
    );
    assert!(
        !first["files"].as_array().unwrap().is_empty(),
        "files come with page 1"
    );
    let (mut commits, mut pages) = (Vec::new(), 0);
    let mut next = Some(path);
    while let Some(p) = next {
        let reply = get(server.port, &p);
        let page = reply.json();
        if pages > 0 {
            assert!(
                page["files"].as_array().unwrap().is_empty(),
                "files only on page 1"
            );
        }
        commits.extend(
            page["commits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["sha"].as_str().unwrap().to_string()),
        );
        pages += 1;
        next = reply.next();
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = main[b + 1..=h].iter().map(|s| s.to_string()).collect();
    assert_eq!(commits, expected, "oldest first, after base up to head");

    // The truth's own account: the changes first shipped by the successful production
    // deployments after the base one, up to the head one.
    let deployments = &history.services[0].deployments;
    let finished = |id: u64| deployments.iter().find(|d| d.id == id).unwrap().finished_at;
    let shipped: BTreeSet<&str> = deployments
        .iter()
        .filter(|d| d.environment == Environment::Production && d.status == Status::Success)
        .filter(|d| d.finished_at > finished(base_id) && d.finished_at <= finished(head_id))
        .flat_map(|d| d.changes.iter().map(|&c| history.changes[c].sha.as_str()))
        .collect();
    assert_eq!(
        commits.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        shipped
    );

    // Unpaginated, compare answers at most 250 commits and no link; reversed, it is behind.
    let whole = get(
        server.port,
        &format!("/repos/{name}/compare/{base}...{head}"),
    );
    assert_eq!(whole.json()["commits"].as_array().unwrap().len(), 250);
    assert!(whole.header("link").is_none());
    let behind = get(
        server.port,
        &format!("/repos/{name}/compare/{head}...{base}"),
    )
    .json();
    assert_eq!(
        (behind["status"].as_str(), behind["behind_by"].as_u64()),
        (Some("behind"), Some(300))
    );
    // `commits?sha=` lists from that commit down; one commit comes with its files; its PR is found.
    let listed = get(
        server.port,
        &format!("/repos/{name}/commits?sha={head}&per_page=5"),
    )
    .json();
    assert_eq!(listed.as_array().unwrap().len(), 5);
    assert_eq!(listed[0]["sha"], head);
    assert_eq!(listed[1]["sha"], main[h - 1]);
    assert!(listed[0].get("files").is_none(), "lists carry no files");
    let one = get(
        server.port,
        &format!("/repos/{name}/commits/{}", &head[..12]),
    )
    .json();
    assert_eq!(one["sha"], head);
    assert!(!one["files"].as_array().unwrap().is_empty());
    let change = history.changes.iter().find(|c| c.sha == head).unwrap();
    let pulls = get(server.port, &format!("/repos/{name}/commits/{head}/pulls")).json();
    match &change.pr {
        Some(pr) => assert_eq!(pulls[0]["number"].as_u64(), Some(pr.number)),
        None => assert_eq!(pulls, Value::Array(Vec::new())),
    }
}

#[test]
fn an_unchanged_list_answers_304_to_its_etag_without_spending_the_rate_limit() {
    let s = sample();
    let server = GithubServer::start(&s.github(), Vec::new());
    let path = "/repos/acme/checkout/pulls?state=closed&per_page=50";
    let first = get(server.port, path);
    let tag = first.header("etag").unwrap().to_string();
    assert!(
        tag.starts_with('"') && !tag.starts_with("W/"),
        "a strong ETag: {tag}"
    );
    let remaining: u64 = first
        .header("x-ratelimit-remaining")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(first.header("x-ratelimit-resource"), Some("core"));
    let again = get_with(
        server.port,
        path,
        &[("If-None-Match", &tag)],
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(tag.as_str()));
    assert_eq!(
        again
            .header("x-ratelimit-remaining")
            .unwrap()
            .parse::<u64>()
            .unwrap(),
        remaining,
        "a 304 costs nothing"
    );
    let other = get_with(
        server.port,
        &format!("{path}&page=2"),
        &[("If-None-Match", &tag)],
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(other.status, 200, "another page has another ETag");
    assert_eq!(
        other
            .header("x-ratelimit-remaining")
            .unwrap()
            .parse::<u64>()
            .unwrap(),
        remaining - 1
    );
    assert_eq!(server.counters.not_modified(), 1);
    assert_eq!(server.counters.requests("/repos/{owner}/{repo}/pulls"), 3);
    assert_eq!(server.counters.total(), 3);
    assert_eq!(server.counters.by_route().len(), 1);
}

#[test]
fn each_fault_fires_as_scripted() {
    let s = sample();
    let faults = vec![
        Fault::on(
            "/releases",
            FaultKind::RateLimitExhausted {
                reset_after: Duration::from_secs(2),
            },
        )
        .after(1),
        Fault::on(
            "/repos/{owner}/{repo}/pulls",
            FaultKind::SecondaryLimit {
                status: 429,
                retry_after: 7,
            },
        ),
        Fault::on(
            "/issues",
            FaultKind::SecondaryLimit {
                status: 403,
                retry_after: 3,
            },
        )
        .after(1),
        Fault::on("/compare/", FaultKind::BadGateway).times(2),
        Fault::on("/repos/{owner}/{repo}/commits/{ref}", FaultKind::Truncated),
        Fault::on(
            "/actions/runs",
            FaultKind::Delay(Duration::from_millis(1500)),
        ),
    ];
    let server = GithubServer::start(&s.github(), faults);
    let port = server.port;
    let name = "acme/reporting";

    // Primary limit: exhausted on the second releases request, for every route of that token,
    // until the reset; another token is unaffected.
    assert_eq!(get(port, &format!("/repos/{name}/releases")).status, 200);
    let limited = get(port, &format!("/repos/{name}/releases"));
    assert_eq!(limited.status, 403);
    assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));
    let reset: u64 = limited
        .header("x-ratelimit-reset")
        .unwrap()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(reset > now && reset <= now + 3, "reset {reset}, now {now}");
    assert!(String::from_utf8_lossy(&limited.body).contains("rate limit exceeded"));
    assert_eq!(get(port, &format!("/repos/{name}/deployments")).status, 403);
    let other = get_with(
        port,
        &format!("/repos/{name}/deployments"),
        &[("Authorization", "Bearer another")],
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(other.status, 200);
    std::thread::sleep(Duration::from_secs(reset - now + 1));
    let after = get(port, &format!("/repos/{name}/releases"));
    assert_eq!(after.status, 200, "the limit is back after its reset");

    // Secondary limits: 429 then 403, each with retry-after and requests left.
    let pulls = get(port, &format!("/repos/{name}/pulls"));
    assert_eq!(
        (pulls.status, pulls.header("retry-after")),
        (429, Some("7"))
    );
    assert_eq!(get(port, &format!("/repos/{name}/pulls")).status, 200);
    assert_eq!(get(port, &format!("/repos/{name}/issues")).status, 200);
    let issues = get(port, &format!("/repos/{name}/issues"));
    assert_eq!(
        (issues.status, issues.header("retry-after")),
        (403, Some("3"))
    );
    assert_ne!(issues.header("x-ratelimit-remaining"), Some("0"));
    assert!(String::from_utf8_lossy(&issues.body).contains("secondary rate limit"));
    assert_eq!(get(port, &format!("/repos/{name}/issues")).status, 200);

    // 502 twice, then the comparison.
    let head = get(port, &format!("/repos/{name}/commits?per_page=2")).json();
    let compare_path = format!(
        "/repos/{name}/compare/{}...{}",
        head[1]["sha"].as_str().unwrap(),
        head[0]["sha"].as_str().unwrap()
    );
    assert_eq!(get(port, &compare_path).status, 502);
    assert_eq!(get(port, &compare_path).status, 502);
    assert_eq!(get(port, &compare_path).json()["ahead_by"], 1);

    // A cut body: content-length promises more than arrives.
    let sha = head[0]["sha"].as_str().unwrap();
    let cut = get(port, &format!("/repos/{name}/commits/{sha}"));
    let promised: usize = cut.header("content-length").unwrap().parse().unwrap();
    assert!(
        cut.body.len() < promised,
        "{} of {promised} bytes",
        cut.body.len()
    );
    assert!(serde_json::from_slice::<Value>(&cut.body).is_err());
    assert_eq!(
        get(port, &format!("/repos/{name}/commits/{sha}")).json()["sha"],
        sha
    );

    // A delay past the client's timeout; the next answer is prompt.
    let started = Instant::now();
    let slow = get_with(
        port,
        &format!("/repos/{name}/actions/runs"),
        &[],
        Duration::from_millis(500),
    );
    assert!(slow.is_err(), "the answer came within the timeout");
    assert!(started.elapsed() < Duration::from_millis(1400));
    let started = Instant::now();
    assert_eq!(
        get(port, &format!("/repos/{name}/actions/runs")).status,
        200
    );
    assert!(started.elapsed() < Duration::from_millis(1000));

    for (index, times) in [(0, 1), (1, 1), (2, 1), (3, 2), (4, 1), (5, 1)] {
        assert_eq!(server.counters.fired(index), times, "fault {index}");
    }
    assert_eq!(server.counters.status(502), 2);
    assert_eq!(
        server
            .counters
            .requests("/repos/{owner}/{repo}/compare/{basehead}"),
        3
    );
}

#[test]
fn the_files_hold_what_the_truth_says() {
    let s = sample();
    let server = GithubServer::start(&s.github(), Vec::new());
    let port = server.port;
    let (mut deployments, mut production_successful, mut not_visible) = (0, 0, 0);
    let (mut merged, mut truth_prs, mut incidents, mut open_incidents, mut linked) =
        (0, 0, 0, 0, 0);
    let mut truth_linked = 0;
    for history in &s.histories {
        let name = &s.org.repos[history.repo].name;
        let (listed, _) = walk(
            port,
            &format!("/repos/{name}/deployments?per_page=100"),
            None,
        );
        for d in &listed {
            deployments += 1;
            let id = d["id"].as_u64().unwrap();
            let statuses = get(
                port,
                &format!("/repos/{name}/deployments/{id}/statuses?per_page=100"),
            )
            .json();
            let success = statuses
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["state"] == "success");
            production_successful += u64::from(d["environment"] == "production" && success);
        }
        let (runs, _) = walk(
            port,
            &format!("/repos/{name}/actions/runs?per_page=100"),
            Some("workflow_runs"),
        );
        for run in runs
            .iter()
            .filter(|r| r["name"].as_str().is_some_and(|n| n.starts_with("Deploy ")))
        {
            deployments += 1;
            production_successful +=
                u64::from(run["name"] == "Deploy production" && run["conclusion"] == "success");
        }
        if let Some(run) = runs.first() {
            let one = get(port, &format!("/repos/{name}/actions/runs/{}", run["id"]));
            assert_eq!(&one.json(), run, "a run by its id");
        }
        let (releases, _) = walk(port, &format!("/repos/{name}/releases?per_page=100"), None);
        deployments += releases.len() as u64;
        production_successful += releases.len() as u64;
        not_visible += read_json(&s.github().join("summary.json"))[name]["deployments_not_visible"]
            .as_u64()
            .unwrap();

        let (pulls, _) = walk(
            port,
            &format!("/repos/{name}/pulls?state=closed&per_page=100"),
            None,
        );
        merged += pulls.iter().filter(|p| !p["merged_at"].is_null()).count();
        truth_prs += history.changes.iter().filter(|c| c.pr.is_some()).count();
        let (issues, _) = walk(
            port,
            &format!("/repos/{name}/issues?labels=incident&state=all&per_page=100"),
            None,
        );
        let real: Vec<&Value> = issues
            .iter()
            .filter(|i| i.get("pull_request").is_none())
            .collect();
        incidents += real.len() as u64;
        linked += real
            .iter()
            .filter(|i| i["body"].as_str().unwrap().contains("\nCaused by "))
            .count();
        let (open, _) = walk(
            port,
            &format!("/repos/{name}/issues?labels=incident&per_page=100"),
            None,
        );
        open_incidents += open
            .iter()
            .filter(|i| i.get("pull_request").is_none())
            .count() as u64;
        truth_linked += history
            .services
            .iter()
            .flat_map(|x| &x.incidents)
            .filter(|i| i.cause != sample_data::delivery::Cause::Unlinked)
            .count();
    }
    let d = &s.truth.deployments;
    assert_eq!(
        deployments + not_visible,
        d.total,
        "every deployment but the release repo's failures"
    );
    assert_eq!(production_successful, d.production_successful);
    assert_eq!(merged, truth_prs);
    assert_eq!(incidents, s.truth.incidents.total);
    assert_eq!(open_incidents, s.truth.incidents.open);
    assert_eq!(linked, truth_linked);

    // The config snippet parses, naming each repo's signal.
    let snippet = std::fs::read_to_string(s.github().join("sources.toml")).unwrap();
    let config = model::config::Config::parse(&snippet, Path::new("sources.toml")).unwrap();
    let github = config.sources.github.unwrap();
    assert_eq!(github.repos, s.truth.repos);
    assert!(matches!(
        github.signal("acme/cart"),
        model::config::DeploySignal::WorkflowRuns { .. }
    ));
    assert!(matches!(
        github.signal("acme/reporting"),
        model::config::DeploySignal::Releases { .. }
    ));
    assert_eq!(
        github.signal("acme/checkout"),
        &model::config::DeploySignal::Deployments
    );
}

#[test]
fn app_installation_tokens_and_the_rate_limit_route() {
    let s = sample();
    let server = GithubServer::start_with_limit(&s.github(), Vec::new(), 10);
    let minted = request(
        server.port,
        "POST",
        "/api/v3/app/installations/34/access_tokens",
        &[("Authorization", "Bearer app-jwt")],
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(minted.status, 201);
    let token = minted.json()["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("ghs_installation_34_"), "{token}");
    assert_eq!(
        server
            .counters
            .requests("POST /app/installations/{installation_id}/access_tokens"),
        1
    );
    // The installation's token has its own bucket of 10, spent one request at a time.
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    for used in 1..=10 {
        let reply = get_with(
            server.port,
            "/repos/acme/cart/releases",
            &auth,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.header("x-ratelimit-used"),
            Some(used.to_string().as_str())
        );
    }
    assert_eq!(
        get_with(
            server.port,
            "/repos/acme/cart/releases",
            &auth,
            Duration::from_secs(10)
        )
        .unwrap()
        .status,
        403
    );
    let limits = get_with(server.port, "/rate_limit", &auth, Duration::from_secs(10))
        .unwrap()
        .json();
    assert_eq!(limits["resources"]["core"]["remaining"], 0);
    assert_eq!(limits["rate"]["limit"], 10);
    // Unknown repos and routes answer GitHub's 404.
    let missing = get(server.port, "/repos/acme/nothing/deployments");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["message"], "Not Found");
}
