//! GitHub REST API v3 objects in their documented shapes (users, repositories, labels,
//! deployments and their statuses, commits, pull requests, reviews, issues, workflow runs,
//! releases). Every URL points at `api.github.com` / `github.com`, as GitHub's own answers do; the
//! loopback test server serves them unchanged.
//!
//! Shapes follow docs.github.com/en/rest (API version 2022-11-28):
//! - deployments/deployments#list-deployments, deployments/statuses#list-deployment-statuses
//! - commits/commits#get-a-commit (with `files`), #list-commits (without), #compare-two-commits
//! - pulls/pulls#list-pull-requests, pulls/pulls#list-commits-on-a-pull-request,
//!   pulls/reviews#list-reviews-for-a-pull-request
//! - issues/issues#list-repository-issues (pull requests appear with a `pull_request` key)
//! - actions/workflow-runs#list-workflow-runs-for-a-repository, releases/releases#list-releases

use serde_json::{Value, json};

use crate::calendar::format_timestamp;
use crate::commits::Developer;

/// The REST API's base, as GitHub writes it into its objects.
pub const API: &str = "https://api.github.com";
/// The web UI's base.
pub const WEB: &str = "https://github.com";

/// A stable 64-bit hash of some words (FNV-1a, then a splitmix finaliser).
pub fn hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// 40 hex digits derived from `parts`: ids of objects that exist only on GitHub's side (a PR
/// branch's commits, blobs), never of a commit on `main` (those are the ground truth's).
pub fn hex40(parts: &[&[u8]]) -> String {
    let mut out = String::with_capacity(40);
    for round in 0u8..3 {
        let mut all: Vec<&[u8]> = parts.to_vec();
        let salt = [round];
        all.push(&salt);
        out.push_str(&format!("{:016x}", hash(&all)));
    }
    out.truncate(40);
    out
}

/// A GUID (as in `X-GitHub-Delivery`) derived from `parts`.
pub fn guid(parts: &[&[u8]]) -> String {
    let h = hex40(parts);
    format!(
        "{}-{}-11ef-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..28]
    )
}

/// A numeric account id for a login.
pub fn account_id(login: &str) -> u64 {
    1_000_000 + hash(&[login.as_bytes()]) % 90_000_000
}

/// A user (`simple-user`) of type `User` or `Bot`.
pub fn user(login: &str, kind: &str) -> Value {
    let id = account_id(login);
    json!({
        "login": login,
        "id": id,
        "node_id": format!("U_{id}"),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "gravatar_id": "",
        "url": format!("{API}/users/{login}"),
        "html_url": format!("{WEB}/{login}"),
        "type": kind,
        "site_admin": false,
    })
}

/// A developer as a GitHub user.
pub fn developer(dev: &Developer) -> Value {
    user(&dev.login, "User")
}

/// The bot that creates deployments and runs workflows.
pub fn actions_bot() -> Value {
    let mut bot = user("github-actions[bot]", "Bot");
    bot["id"] = json!(41_898_282);
    bot
}

/// The organisation account owning every repository.
pub fn owner(login: &str) -> Value {
    user(login, "Organization")
}

/// A repository object (`repository`, the fields an ingest reads and a few more).
pub fn repository(full_name: &str, repo_id: u64) -> Value {
    let (login, name) = full_name.split_once('/').unwrap_or(("acme", full_name));
    json!({
        "id": repo_id,
        "node_id": format!("R_{repo_id}"),
        "name": name,
        "full_name": full_name,
        "private": true,
        "owner": owner(login),
        "html_url": format!("{WEB}/{full_name}"),
        "description": null,
        "fork": false,
        "url": format!("{API}/repos/{full_name}"),
        "deployments_url": format!("{API}/repos/{full_name}/deployments"),
        "pulls_url": format!("{API}/repos/{full_name}/pulls{{/number}}"),
        "issues_url": format!("{API}/repos/{full_name}/issues{{/number}}"),
        "commits_url": format!("{API}/repos/{full_name}/commits{{/sha}}"),
        "releases_url": format!("{API}/repos/{full_name}/releases{{/id}}"),
        "default_branch": "main",
        "visibility": "private",
    })
}

/// A label object.
pub fn label(full_name: &str, name: &str) -> Value {
    let id = 5_000_000_000 + hash(&[full_name.as_bytes(), name.as_bytes()]) % 1_000_000_000;
    let color = match name {
        "incident" => "b60205",
        "hotfix" => "d93f0b",
        "bug" => "d73a4a",
        "enhancement" => "a2eeef",
        "documentation" => "0075ca",
        _ => "ededed",
    };
    json!({
        "id": id,
        "node_id": format!("LA_{id}"),
        "url": format!("{API}/repos/{full_name}/labels/{}", name.replace(' ', "%20")),
        "name": name,
        "color": color,
        "default": matches!(name, "bug" | "enhancement" | "documentation"),
        "description": null,
    })
}

/// Labels by name.
pub fn labels(full_name: &str, names: &[String]) -> Value {
    Value::Array(names.iter().map(|n| label(full_name, n)).collect())
}

/// Seconds as GitHub's timestamp, `2025-05-01T09:30:00Z`.
pub fn time(seconds: i64) -> String {
    format_timestamp(seconds)
}

/// A git identity (`commit.author`, `commit.committer`).
pub fn git_person(dev: &Developer, at: i64) -> Value {
    json!({ "name": dev.name, "email": dev.email(), "date": time(at) })
}

/// One file of a commit (`files[]` of "Get a commit" and of a comparison): the generated
/// content of a path is one line, `"{path} @ {n}"`, rewritten by every commit that touches it.
pub fn commit_file(
    full_name: &str,
    sha: &str,
    path: &str,
    position: usize,
    previous: Option<usize>,
) -> Value {
    let content = format!("{path} @ {position}\n");
    let blob = hex40(&[b"blob", full_name.as_bytes(), content.as_bytes()]);
    let (status, deletions, patch) = match previous {
        Some(before) => (
            "modified",
            1,
            format!("@@ -1 +1 @@\n-{path} @ {before}\n+{path} @ {position}"),
        ),
        None => ("added", 0, format!("@@ -0,0 +1 @@\n+{path} @ {position}")),
    };
    json!({
        "sha": blob,
        "filename": path,
        "status": status,
        "additions": 1,
        "deletions": deletions,
        "changes": 1 + deletions,
        "blob_url": format!("{WEB}/{full_name}/blob/{sha}/{path}"),
        "raw_url": format!("{WEB}/{full_name}/raw/{sha}/{path}"),
        "contents_url": format!("{API}/repos/{full_name}/contents/{path}?ref={sha}"),
        "patch": patch,
    })
}

/// What a commit object is built from.
pub struct CommitParts<'a> {
    /// `owner/name`.
    pub full_name: &'a str,
    /// Commit id.
    pub sha: &'a str,
    /// Parent commit ids.
    pub parents: &'a [&'a str],
    /// Author and committer.
    pub author: &'a Developer,
    /// Author time.
    pub authored_at: i64,
    /// Commit time.
    pub committed_at: i64,
    /// Full message.
    pub message: &'a str,
    /// `files[]`, or `None` for the list shape (list and compare answers carry no files).
    pub files: Option<Vec<Value>>,
}

/// A commit (`commit` of "Get a commit"; without `files` and `stats` when `parts.files` is
/// `None`).
pub fn commit(parts: CommitParts<'_>) -> Value {
    let CommitParts {
        full_name,
        sha,
        parents,
        author,
        authored_at,
        committed_at,
        message,
        files,
    } = parts;
    let tree = hex40(&[b"tree", full_name.as_bytes(), sha.as_bytes()]);
    let mut value = json!({
        "sha": sha,
        "node_id": format!("C_{}", &sha[..sha.len().min(20)]),
        "commit": {
            "author": git_person(author, authored_at),
            "committer": git_person(author, committed_at),
            "message": message.trim_end_matches('\n'),
            "tree": { "sha": tree, "url": format!("{API}/repos/{full_name}/git/trees/{tree}") },
            "url": format!("{API}/repos/{full_name}/git/commits/{sha}"),
            "comment_count": 0,
            "verification": {
                "verified": false, "reason": "unsigned", "signature": null, "payload": null,
                "verified_at": null
            },
        },
        "url": format!("{API}/repos/{full_name}/commits/{sha}"),
        "html_url": format!("{WEB}/{full_name}/commit/{sha}"),
        "comments_url": format!("{API}/repos/{full_name}/commits/{sha}/comments"),
        "author": developer(author),
        "committer": developer(author),
        "parents": parents.iter().map(|p| json!({
            "sha": p,
            "url": format!("{API}/repos/{full_name}/commits/{p}"),
            "html_url": format!("{WEB}/{full_name}/commit/{p}"),
        })).collect::<Vec<_>>(),
    });
    if let Some(files) = files {
        let additions: u64 = files.iter().filter_map(|f| f["additions"].as_u64()).sum();
        let deletions: u64 = files.iter().filter_map(|f| f["deletions"].as_u64()).sum();
        value["stats"] = json!({
            "total": additions + deletions, "additions": additions, "deletions": deletions
        });
        value["files"] = Value::Array(files);
    }
    value
}

/// A branch tip or base (`head`/`base` of a pull request).
pub fn pull_ref(full_name: &str, repo_id: u64, branch: &str, sha: &str) -> Value {
    let login = full_name.split('/').next().unwrap_or("acme");
    json!({
        "label": format!("{login}:{branch}"),
        "ref": branch,
        "sha": sha,
        "user": owner(login),
        "repo": repository(full_name, repo_id),
    })
}

/// What a pull request object is built from.
pub struct PullParts<'a> {
    /// `owner/name`.
    pub full_name: &'a str,
    /// The repository's id.
    pub repo_id: u64,
    /// PR number.
    pub number: u64,
    /// Title.
    pub title: &'a str,
    /// Body (markdown).
    pub body: &'a str,
    /// Who opened it.
    pub author: &'a Developer,
    /// Label names.
    pub labels: &'a [String],
    /// Opened.
    pub created_at: i64,
    /// Closed (merged or not).
    pub closed_at: i64,
    /// Merged: the squash commit's id on `main`; `None` when closed without merging.
    pub merge_commit_sha: Option<&'a str>,
    /// The head branch and its tip.
    pub head: (&'a str, &'a str),
    /// `main`'s tip when the PR was opened.
    pub base_sha: &'a str,
    /// Commits on the PR branch.
    pub commits: usize,
    /// Files changed.
    pub changed_files: usize,
}

/// The PR's id (distinct from its issue's id, as on GitHub).
pub fn pull_id(repo_id: u64, number: u64) -> u64 {
    3_000_000_000 + repo_id % 10_000 * 1_000_000 + number
}

/// The issue id of issue or PR `number`.
pub fn issue_id(repo_id: u64, number: u64) -> u64 {
    2_000_000_000 + repo_id % 10_000 * 1_000_000 + number
}

/// A pull request (`pull-request`; the list endpoint's `pull-request-simple` is a subset).
pub fn pull(p: PullParts<'_>) -> Value {
    let PullParts {
        full_name,
        repo_id,
        number,
        title,
        body,
        author,
        labels: label_names,
        created_at,
        closed_at,
        merge_commit_sha,
        head,
        base_sha,
        commits,
        changed_files,
    } = p;
    let id = pull_id(repo_id, number);
    let api = format!("{API}/repos/{full_name}");
    let merged_at = merge_commit_sha.map(|_| time(closed_at));
    let mut value = json!({
        "url": format!("{api}/pulls/{number}"),
        "id": id,
        "node_id": format!("PR_{id}"),
        "html_url": format!("{WEB}/{full_name}/pull/{number}"),
        "diff_url": format!("{WEB}/{full_name}/pull/{number}.diff"),
        "patch_url": format!("{WEB}/{full_name}/pull/{number}.patch"),
        "issue_url": format!("{api}/issues/{number}"),
        "commits_url": format!("{api}/pulls/{number}/commits"),
        "review_comments_url": format!("{api}/pulls/{number}/comments"),
        "review_comment_url": format!("{api}/pulls/comments{{/number}}"),
        "comments_url": format!("{api}/issues/{number}/comments"),
        "statuses_url": format!("{api}/statuses/{}", head.1),
        "number": number,
        "state": "closed",
        "locked": false,
        "title": title,
        "user": developer(author),
        "body": body,
        "labels": labels(full_name, label_names),
        "milestone": null,
        "active_lock_reason": null,
        "created_at": time(created_at),
        "updated_at": time(closed_at),
        "closed_at": time(closed_at),
        "merged_at": merged_at,
        "merge_commit_sha": merge_commit_sha,
        "assignee": null,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": pull_ref(full_name, repo_id, head.0, head.1),
        "base": pull_ref(full_name, repo_id, "main", base_sha),
        "author_association": "MEMBER",
        "auto_merge": null,
        "draft": false,
    });
    // The single-PR shape's extras (json! would exceed the macro recursion limit in one go).
    let extras = json!({
        "merged": merge_commit_sha.is_some(),
        "comments": 0,
        "review_comments": 0,
        "commits": commits,
        "additions": changed_files,
        "deletions": changed_files.saturating_sub(1),
        "changed_files": changed_files,
    });
    if let (Some(pull), Value::Object(extras)) = (value.as_object_mut(), extras) {
        pull.extend(extras);
    }
    value
}

/// A review (`pull-request-review`).
pub fn review(
    full_name: &str,
    number: u64,
    id: u64,
    reviewer: &Value,
    state: &str,
    at: i64,
    commit_id: &str,
) -> Value {
    json!({
        "id": id,
        "node_id": format!("PRR_{id}"),
        "user": reviewer,
        "body": match state { "APPROVED" => "Looks good to me.", "CHANGES_REQUESTED" => "Please add a test.", _ => "A few comments inline." },
        "state": state,
        "html_url": format!("{WEB}/{full_name}/pull/{number}#pullrequestreview-{id}"),
        "pull_request_url": format!("{API}/repos/{full_name}/pulls/{number}"),
        "author_association": if reviewer["type"] == "Bot" { "NONE" } else { "MEMBER" },
        "submitted_at": time(at),
        "commit_id": commit_id,
    })
}

/// What an issue object is built from.
pub struct IssueParts<'a> {
    /// `owner/name`.
    pub full_name: &'a str,
    /// The repository's id.
    pub repo_id: u64,
    /// Number (shared with pull requests).
    pub number: u64,
    /// Title.
    pub title: &'a str,
    /// Body.
    pub body: &'a str,
    /// Opened by.
    pub author: &'a Developer,
    /// Label names.
    pub labels: &'a [String],
    /// Opened.
    pub created_at: i64,
    /// Closed; `None` while open.
    pub closed_at: Option<i64>,
    /// For a pull request: `Some(merged_at)` (itself `None` when closed unmerged).
    pub pull_request: Option<Option<i64>>,
}

/// An issue (`issue`), or a pull request as the issues list shows it.
pub fn issue(p: IssueParts<'_>) -> Value {
    let IssueParts {
        full_name,
        repo_id,
        number,
        title,
        body,
        author,
        labels: label_names,
        created_at,
        closed_at,
        pull_request,
    } = p;
    let id = issue_id(repo_id, number);
    let api = format!("{API}/repos/{full_name}");
    let mut value = json!({
        "url": format!("{api}/issues/{number}"),
        "repository_url": api,
        "labels_url": format!("{api}/issues/{number}/labels{{/name}}"),
        "comments_url": format!("{api}/issues/{number}/comments"),
        "events_url": format!("{api}/issues/{number}/events"),
        "html_url": format!("{WEB}/{full_name}/{}/{number}", if pull_request.is_some() { "pull" } else { "issues" }),
        "id": id,
        "node_id": format!("I_{id}"),
        "number": number,
        "title": title,
        "user": developer(author),
        "labels": labels(full_name, label_names),
        "state": if closed_at.is_some() { "closed" } else { "open" },
        "locked": false,
        "assignee": null,
        "assignees": [],
        "milestone": null,
        "comments": 0,
        "created_at": time(created_at),
        "updated_at": time(closed_at.unwrap_or(created_at)),
        "closed_at": closed_at.map(time),
        "author_association": "MEMBER",
        "active_lock_reason": null,
        "body": body,
        "state_reason": closed_at.map(|_| "completed"),
        "timeline_url": format!("{api}/issues/{number}/timeline"),
    });
    if let Some(merged_at) = pull_request {
        value["pull_request"] = json!({
            "url": format!("{api}/pulls/{number}"),
            "html_url": format!("{WEB}/{full_name}/pull/{number}"),
            "diff_url": format!("{WEB}/{full_name}/pull/{number}.diff"),
            "patch_url": format!("{WEB}/{full_name}/pull/{number}.patch"),
            "merged_at": merged_at.map(time),
        });
    }
    value
}
