//! What the loopback GitHub answers, route by route, from the generated `github/` files: the
//! documented filters, sort orders and pagination of GitHub's REST API v3 (docs.github.com/en/rest,
//! API version 2022-11-28), computed here where GitHub computes them (compare, `commits?sha=`,
//! commit → pulls, issue filters).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use super::store::{Commit, Issue, Pull, Repo, Store, elements, read};

/// An answer before headers: a JSON body with its Link header, or an error.
pub enum Answer {
    /// 200 (or 201) with a body, and the pagination links.
    Json {
        status: u16,
        body: String,
        pages: Option<Pages>,
    },
    /// An error status with GitHub's `{message, documentation_url}` body.
    Error(u16, String),
}

/// Where one page sits in a paginated list.
pub struct Pages {
    /// This page (1-based).
    pub page: usize,
    /// The last page.
    pub last: usize,
}

/// Query parameters, percent-decoded.
pub struct Query(pub Vec<(String, String)>);

impl Query {
    /// Parses `a=1&b=x%2Cy`.
    pub fn parse(query: &str) -> Query {
        Query(
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    /// A parameter's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn number(&self, key: &str) -> Option<usize> {
        self.get(key).and_then(|v| v.parse().ok())
    }

    /// Whether the client asked for pages (compare only paginates when asked).
    pub fn paginated(&self) -> bool {
        self.get("page").is_some() || self.get("per_page").is_some()
    }

    /// `per_page` (default 30, at most 100) and `page` (default 1).
    pub fn page(&self) -> (usize, usize) {
        let per_page = self.number("per_page").unwrap_or(30).clamp(1, 100);
        (per_page, self.number("page").unwrap_or(1).max(1))
    }
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One page of `items` as a JSON array.
fn paginate(items: &[&str], query: &Query) -> Answer {
    let (per_page, page) = query.page();
    let last = items.len().div_ceil(per_page).max(1);
    let start = ((page - 1) * per_page).min(items.len());
    let end = (start + per_page).min(items.len());
    Answer::Json {
        status: 200,
        body: format!("[{}]", items[start..end].join(",")),
        pages: (last > 1).then_some(Pages { page, last }),
    }
}

fn not_found() -> Answer {
    Answer::Error(404, "Not Found".into())
}

impl Store {
    /// Answers one request (`segments`: the path after the optional `/api/v3`).
    pub fn answer(
        &self,
        method: &str,
        segments: &[&str],
        query: &Query,
        token_serial: u64,
    ) -> Answer {
        match (method, segments) {
            ("POST", ["app", "installations", id, "access_tokens"]) => Answer::Json {
                status: 201,
                body: json!({
                    "token": format!("ghs_installation_{id}_{token_serial}"),
                    "expires_at": "2099-01-01T00:00:00Z",
                    "permissions": { "contents": "read", "deployments": "read", "issues": "read", "pull_requests": "read", "actions": "read" },
                    "repository_selection": "all",
                })
                .to_string(),
                pages: None,
            },
            ("GET", ["repos", owner, name, rest @ ..]) => match self.repo(owner, name) {
                Ok(Some(repo)) => repo_answer(&repo, rest, query),
                Ok(None) => not_found(),
                Err(e) => Answer::Error(500, e),
            },
            _ => not_found(),
        }
    }
}

fn json_array<T>(items: &[T], body: impl Fn(&T) -> &str) -> Vec<&str> {
    items.iter().map(body).collect()
}

fn repo_answer(repo: &Repo, rest: &[&str], q: &Query) -> Answer {
    match rest {
        [] => Answer::Json {
            status: 200,
            body: json!({
                "full_name": repo.full_name,
                "name": repo.full_name.split('/').nth(1),
                "default_branch": "main",
                "private": true,
                "url": format!("https://api.github.com/repos/{}", repo.full_name),
            })
            .to_string(),
            pages: None,
        },
        ["deployments"] => {
            let kept: Vec<&str> = repo
                .deployments
                .iter()
                .filter(|d| {
                    q.get("sha").is_none_or(|v| v == d.sha)
                        && q.get("ref").is_none_or(|v| v == d.git_ref)
                        && q.get("task").is_none_or(|v| v == d.task)
                        && q.get("environment").is_none_or(|v| v == d.environment)
                })
                .map(|d| &*d.json)
                .collect();
            paginate(&kept, q)
        }
        ["deployments", id] => match repo.deployments.iter().find(|d| d.id.to_string() == *id) {
            Some(d) => single(&d.json),
            None => not_found(),
        },
        ["deployments", id, "statuses"] => {
            file_list(&repo.dir.join(format!("deployments/{id}/statuses.json")), q)
        }
        ["commits"] => {
            let head = match q.get("sha") {
                Some(reference) => match repo.resolve(reference) {
                    Some(i) => i,
                    None => {
                        return Answer::Error(404, format!("No commit found for SHA: {reference}"));
                    }
                },
                None => match repo.commits.len().checked_sub(1) {
                    Some(i) => i,
                    None => return Answer::Error(409, "Git Repository is empty.".into()),
                },
            };
            let kept: Vec<&str> = repo.commits[..=head]
                .iter()
                .rev()
                .filter(|c| {
                    q.get("since").is_none_or(|s| c.date.as_str() >= s)
                        && q.get("until").is_none_or(|u| c.date.as_str() <= u)
                })
                .map(|c| &*c.listed)
                .collect();
            paginate(&kept, q)
        }
        ["commits", reference] => match repo.resolve(reference) {
            Some(i) => single(&repo.commits[i].full),
            None => Answer::Error(422, format!("No commit found for SHA: {reference}")),
        },
        ["commits", reference, "pulls"] => {
            let Some(i) = repo.resolve(reference) else {
                return Answer::Error(422, format!("No commit found for SHA: {reference}"));
            };
            let sha = &repo.commits[i].sha;
            let kept: Vec<&str> = repo
                .pulls
                .iter()
                .filter(|p| p.merge_commit_sha.as_deref() == Some(sha))
                .map(|p| &*p.json)
                .collect();
            paginate(&kept, q)
        }
        ["compare", basehead] => compare(repo, basehead, q),
        ["pulls"] => {
            let state = q.get("state").unwrap_or("open");
            let mut kept: Vec<&Pull> = repo
                .pulls
                .iter()
                .filter(|p| state == "all" || p.state == state)
                .filter(|p| q.get("base").is_none_or(|b| b == p.base))
                .filter(|p| q.get("head").is_none_or(|h| h == p.head))
                .collect();
            let sort = q.get("sort").unwrap_or("created");
            let descending = q
                .get("direction")
                .map_or(sort == "created", |d| d == "desc");
            kept.sort_by(|a, b| {
                let (x, y) = match sort {
                    "updated" => (&a.updated_at, &b.updated_at),
                    _ => (&a.created_at, &b.created_at),
                };
                (x, a.number).cmp(&(y, b.number))
            });
            if descending {
                kept.reverse();
            }
            paginate(&json_array(&kept, |p| &p.json), q)
        }
        ["pulls", number] => match repo.pulls.iter().find(|p| p.number.to_string() == *number) {
            Some(p) => single(&p.json),
            None => not_found(),
        },
        ["pulls", number, "commits"] => {
            file_list(&repo.dir.join(format!("pulls/{number}/commits.json")), q)
        }
        ["pulls", number, "reviews"] => {
            file_list(&repo.dir.join(format!("pulls/{number}/reviews.json")), q)
        }
        ["issues"] => {
            let state = q.get("state").unwrap_or("open");
            let labels: Vec<&str> = q
                .get("labels")
                .map(|l| {
                    l.split(',')
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            let mut kept: Vec<&Issue> = repo
                .issues
                .iter()
                .filter(|i| state == "all" || i.state == state)
                .filter(|i| labels.iter().all(|l| i.labels.iter().any(|have| have == l)))
                .filter(|i| q.get("since").is_none_or(|s| i.updated_at.as_str() >= s))
                .collect();
            let sort = q.get("sort").unwrap_or("created");
            let descending = q.get("direction").is_none_or(|d| d == "desc");
            kept.sort_by(|a, b| match sort {
                "updated" => a.updated_at.cmp(&b.updated_at),
                _ => a.created_at.cmp(&b.created_at),
            });
            if descending {
                kept.reverse();
            }
            paginate(&json_array(&kept, |i| &i.json), q)
        }
        ["actions", "runs"] => runs(repo, None, q),
        ["actions", "runs", id] => match repo.runs.iter().find(|r| r.id.to_string() == *id) {
            Some(r) => single(&r.json),
            None => not_found(),
        },
        ["actions", "workflows", workflow, "runs"] => runs(repo, Some(workflow), q),
        ["releases"] => paginate(&json_array(&repo.releases, |r| r), q),
        _ => not_found(),
    }
}

fn single(json: &str) -> Answer {
    Answer::Json {
        status: 200,
        body: json.to_string(),
        pages: None,
    }
}

/// A list kept in its own file (statuses, PR commits, reviews), paginated.
fn file_list(path: &Path, q: &Query) -> Answer {
    match read(path) {
        Ok(Value::Null) => not_found(),
        Ok(value) => {
            let items: Vec<String> = elements(value).iter().map(Value::to_string).collect();
            paginate(&json_array(&items, |s| s), q)
        }
        Err(e) => Answer::Error(500, e),
    }
}

/// `{total_count, workflow_runs}` of the runs that pass the documented filters.
fn runs(repo: &Repo, workflow: Option<&str>, q: &Query) -> Answer {
    let kept: Vec<&str> = repo
        .runs
        .iter()
        .filter(|r| {
            workflow.is_none_or(|w| {
                w == r.workflow_id.to_string() || r.path.rsplit('/').next() == Some(w)
            })
        })
        .filter(|r| {
            q.get("status")
                .is_none_or(|s| s == r.status || s == r.conclusion)
        })
        .filter(|r| q.get("event").is_none_or(|e| e == r.event))
        .filter(|r| q.get("branch").is_none_or(|b| b == r.head_branch))
        .filter(|r| q.get("head_sha").is_none_or(|h| h == r.head_sha))
        .map(|r| &*r.json)
        .collect();
    match paginate(&kept, q) {
        Answer::Json {
            status,
            body,
            pages,
        } => Answer::Json {
            status,
            body: format!(
                "{{\"total_count\":{},\"workflow_runs\":{body}}}",
                kept.len()
            ),
            pages,
        },
        other => other,
    }
}

/// "Compare two commits": main is linear, so base...head is the commits after base up to head,
/// oldest first; paginated only when `page` or `per_page` is given (else up to 250 commits);
/// `files` on the first page only (at most 300), as documented.
fn compare(repo: &Repo, basehead: &str, q: &Query) -> Answer {
    let Some((base, head)) = basehead.split_once("...") else {
        return not_found();
    };
    let (Some(b), Some(h)) = (repo.resolve(base), repo.resolve(head)) else {
        return not_found();
    };
    let range: &[Commit] = if b < h { &repo.commits[b + 1..=h] } else { &[] };
    let (status, ahead, behind) = match b.cmp(&h) {
        std::cmp::Ordering::Less => ("ahead", h - b, 0),
        std::cmp::Ordering::Equal => ("identical", 0, 0),
        std::cmp::Ordering::Greater => ("behind", 0, b - h),
    };
    let (commits, pages, first_page) = if q.paginated() {
        let listed: Vec<&str> = range.iter().map(|c| &*c.listed).collect();
        match paginate(&listed, q) {
            Answer::Json { body, pages, .. } => (body, pages, q.page().1 == 1),
            other => return other,
        }
    } else {
        let listed: Vec<&str> = range.iter().take(250).map(|c| &*c.listed).collect();
        (format!("[{}]", listed.join(",")), None, true)
    };
    let files = if first_page {
        let mut latest: BTreeMap<&str, &str> = BTreeMap::new();
        for c in range {
            for (name, json) in &c.files {
                latest.insert(name, json);
            }
        }
        let kept: Vec<&str> = latest.values().take(300).copied().collect();
        format!("[{}]", kept.join(","))
    } else {
        "[]".into()
    };
    let base_commit = &repo.commits[b].listed;
    let full = &repo.full_name;
    let body = format!(
        "{{\"url\":\"https://api.github.com/repos/{full}/compare/{basehead}\",\"html_url\":\"https://github.com/{full}/compare/{basehead}\",\"permalink_url\":\"https://github.com/{full}/compare/{basehead}\",\"diff_url\":\"https://github.com/{full}/compare/{basehead}.diff\",\"patch_url\":\"https://github.com/{full}/compare/{basehead}.patch\",\"base_commit\":{base_commit},\"merge_base_commit\":{merge_base},\"status\":\"{status}\",\"ahead_by\":{ahead},\"behind_by\":{behind},\"total_commits\":{ahead},\"commits\":{commits},\"files\":{files}}}",
        merge_base = repo.commits[b.min(h)].listed,
    );
    Answer::Json {
        status: 200,
        body,
        pages,
    }
}
