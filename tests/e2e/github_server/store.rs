//! The generated `github/` files in memory: each list as its elements' serialized JSON beside
//! the few fields a filter reads (a medium organisation fits), a repo read on its first request.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

/// A commit of main.
pub(super) struct Commit {
    pub(super) sha: String,
    pub(super) date: String,
    /// The list shape (no `files`, no `stats`).
    pub(super) listed: Box<str>,
    /// "Get a commit": with `files` and `stats`.
    pub(super) full: Box<str>,
    /// `files[]` elements by filename.
    pub(super) files: Vec<(String, Box<str>)>,
}

pub(super) struct Pull {
    pub(super) number: u64,
    pub(super) state: String,
    pub(super) created_at: String,
    pub(super) updated_at: String,
    pub(super) merge_commit_sha: Option<String>,
    pub(super) base: String,
    pub(super) head: String,
    pub(super) json: Box<str>,
}

pub(super) struct Issue {
    pub(super) state: String,
    pub(super) labels: Vec<String>,
    pub(super) created_at: String,
    pub(super) updated_at: String,
    pub(super) json: Box<str>,
}

pub(super) struct Run {
    pub(super) id: u64,
    pub(super) path: String,
    pub(super) workflow_id: u64,
    pub(super) status: String,
    pub(super) conclusion: String,
    pub(super) event: String,
    pub(super) head_sha: String,
    pub(super) head_branch: String,
    pub(super) json: Box<str>,
}

pub(super) struct Deployment {
    pub(super) id: u64,
    pub(super) environment: String,
    pub(super) sha: String,
    pub(super) git_ref: String,
    pub(super) task: String,
    pub(super) json: Box<str>,
}

/// One repo's files, read once.
pub(super) struct Repo {
    pub(super) dir: PathBuf,
    pub(super) full_name: String,
    /// Oldest first; `index` finds a sha.
    pub(super) commits: Vec<Commit>,
    pub(super) index: HashMap<String, usize>,
    pub(super) deployments: Vec<Deployment>,
    pub(super) pulls: Vec<Pull>,
    pub(super) issues: Vec<Issue>,
    pub(super) runs: Vec<Run>,
    pub(super) releases: Vec<Box<str>>,
}

pub(super) fn read(path: &Path) -> Result<Value, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Value::Null),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

pub(super) fn elements(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        _ => Vec::new(),
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

impl Repo {
    fn load(dir: PathBuf, full_name: &str) -> Result<Repo, String> {
        let mut commits = Vec::new();
        for mut c in elements(read(&dir.join("commits.json"))?).into_iter().rev() {
            let full = c.to_string().into_boxed_str();
            let files = c["files"]
                .as_array()
                .map(|files| {
                    files
                        .iter()
                        .map(|f| (text(&f["filename"]), f.to_string().into_boxed_str()))
                        .collect()
                })
                .unwrap_or_default();
            if let Some(object) = c.as_object_mut() {
                object.remove("files");
                object.remove("stats");
            }
            commits.push(Commit {
                sha: text(&c["sha"]),
                date: text(&c["commit"]["committer"]["date"]),
                listed: c.to_string().into_boxed_str(),
                full,
                files,
            });
        }
        let index = commits
            .iter()
            .enumerate()
            .map(|(i, c)| (c.sha.clone(), i))
            .collect();
        let deployments = elements(read(&dir.join("deployments.json"))?)
            .into_iter()
            .map(|d| Deployment {
                id: d["id"].as_u64().unwrap_or_default(),
                environment: text(&d["environment"]),
                sha: text(&d["sha"]),
                git_ref: text(&d["ref"]),
                task: text(&d["task"]),
                json: d.to_string().into_boxed_str(),
            })
            .collect();
        let pulls = elements(read(&dir.join("pulls.json"))?)
            .into_iter()
            .map(|p| Pull {
                number: p["number"].as_u64().unwrap_or_default(),
                state: text(&p["state"]),
                created_at: text(&p["created_at"]),
                updated_at: text(&p["updated_at"]),
                merge_commit_sha: p["merged_at"]
                    .is_string()
                    .then(|| text(&p["merge_commit_sha"])),
                base: text(&p["base"]["ref"]),
                head: text(&p["head"]["label"]),
                json: p.to_string().into_boxed_str(),
            })
            .collect();
        let issues = elements(read(&dir.join("issues.json"))?)
            .into_iter()
            .map(|i| Issue {
                state: text(&i["state"]),
                labels: i["labels"]
                    .as_array()
                    .map(|l| l.iter().map(|l| text(&l["name"])).collect())
                    .unwrap_or_default(),
                created_at: text(&i["created_at"]),
                updated_at: text(&i["updated_at"]),
                json: i.to_string().into_boxed_str(),
            })
            .collect();
        let runs_file = read(&dir.join("actions/runs.json"))?;
        let runs = elements(runs_file["workflow_runs"].clone())
            .into_iter()
            .map(|r| Run {
                id: r["id"].as_u64().unwrap_or_default(),
                path: text(&r["path"]),
                workflow_id: r["workflow_id"].as_u64().unwrap_or_default(),
                status: text(&r["status"]),
                conclusion: text(&r["conclusion"]),
                event: text(&r["event"]),
                head_sha: text(&r["head_sha"]),
                head_branch: text(&r["head_branch"]),
                json: r.to_string().into_boxed_str(),
            })
            .collect();
        let releases = elements(read(&dir.join("releases.json"))?)
            .into_iter()
            .map(|r| r.to_string().into_boxed_str())
            .collect();
        Ok(Repo {
            dir,
            full_name: full_name.to_string(),
            commits,
            index,
            deployments,
            pulls,
            issues,
            runs,
            releases,
        })
    }

    /// The position in main of a sha (or a unique prefix of 7+ digits) or of `main`/`HEAD`.
    pub(super) fn resolve(&self, reference: &str) -> Option<usize> {
        if matches!(reference, "main" | "HEAD" | "refs/heads/main") {
            return self.commits.len().checked_sub(1);
        }
        if let Some(&i) = self.index.get(reference) {
            return Some(i);
        }
        if reference.len() >= 7 && reference.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut found = self
                .commits
                .iter()
                .enumerate()
                .filter(|(_, c)| c.sha.starts_with(reference));
            let first = found.next().map(|(i, _)| i);
            if found.next().is_none() {
                return first;
            }
        }
        None
    }
}

/// The organisation's files, read repo by repo.
pub struct Store {
    dir: PathBuf,
    repos: Mutex<HashMap<String, Arc<OnceLock<Result<Arc<Repo>, String>>>>>,
}

impl Store {
    /// Serves `dir` (a generated `github/` folder).
    pub fn new(dir: &Path) -> Store {
        Store {
            dir: dir.to_path_buf(),
            repos: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn repo(&self, owner: &str, name: &str) -> Result<Option<Arc<Repo>>, String> {
        let dir = self.dir.join("repos").join(owner).join(name);
        if owner.contains("..") || name.contains("..") || !dir.is_dir() {
            return Ok(None);
        }
        let full_name = format!("{owner}/{name}");
        // One load per repo, even when its first requests come together; other repos wait for
        // nothing but the map.
        let slot = self
            .repos
            .lock()
            .unwrap()
            .entry(full_name.clone())
            .or_default()
            .clone();
        slot.get_or_init(|| Repo::load(dir, &full_name).map(Arc::new))
            .clone()
            .map(Some)
    }

    /// The route template of a path (`/repos/{owner}/{repo}/pulls/{number}`), for counters and
    /// fault rules.
    pub fn template(method: &str, segments: &[&str]) -> String {
        let named: Vec<&str> = match segments {
            ["repos", _, _, rest @ ..] => {
                let mut out = vec!["repos", "{owner}", "{repo}"];
                match rest {
                    ["deployments", _, tail @ ..] => {
                        out.extend(["deployments", "{deployment_id}"]);
                        out.extend(tail);
                    }
                    ["commits", _, tail @ ..] => {
                        out.extend(["commits", "{ref}"]);
                        out.extend(tail);
                    }
                    ["compare", _] => out.extend(["compare", "{basehead}"]),
                    ["pulls", _, tail @ ..] => {
                        out.extend(["pulls", "{pull_number}"]);
                        out.extend(tail);
                    }
                    ["actions", "runs", _, tail @ ..] => {
                        out.extend(["actions", "runs", "{run_id}"]);
                        out.extend(tail);
                    }
                    ["actions", "workflows", _, tail @ ..] => {
                        out.extend(["actions", "workflows", "{workflow_id}"]);
                        out.extend(tail);
                    }
                    other => out.extend(other),
                }
                out
            }
            ["app", "installations", _, tail @ ..] => {
                let mut out = vec!["app", "installations", "{installation_id}"];
                out.extend(tail);
                out
            }
            other => other.to_vec(),
        };
        let path = format!("/{}", named.join("/"));
        if method == "GET" {
            path
        } else {
            format!("{method} {path}")
        }
    }
}
