//! Webhook deliveries (`github/webhooks.ndjson`): one line per delivery,
//! `{"event": X-GitHub-Event, "delivery": X-GitHub-Delivery, "payload": body}`, in time order
//! within each repo. Payload shapes follow docs.github.com/en/webhooks/webhook-events-and-payloads
//! (`deployment`, `deployment_status`, `workflow_run`, `pull_request`, `push`, `issues`,
//! `release`); the signature header (`X-Hub-Signature-256`) is computed by whoever sends them,
//! over these bytes, with the receiver's secret.

use serde_json::{Value, json};

use crate::GenerateError;
use crate::writers::OutFile;
use crate::writers::github::objects::{guid, repository, time};

/// One repo's deliveries, collected out of order and written sorted by time.
pub struct Deliveries {
    full_name: String,
    repository: Value,
    items: Vec<(i64, u64, String)>,
}

impl Deliveries {
    /// No deliveries yet for repo `full_name`.
    pub fn new(full_name: &str, repo_id: u64) -> Self {
        Deliveries {
            full_name: full_name.to_string(),
            repository: repository(full_name, repo_id),
            items: Vec::new(),
        }
    }

    /// A delivery of `event` sent at `at`; `payload` gets the `repository` and, unless it names
    /// one, the org's `sender`.
    pub fn push(&mut self, at: i64, event: &str, mut payload: Value) {
        let sequence = self.items.len() as u64;
        payload["repository"] = self.repository.clone();
        if payload.get("sender").is_none() {
            payload["sender"] = self.repository["owner"].clone();
        }
        let delivery = guid(&[
            b"delivery",
            self.full_name.as_bytes(),
            &sequence.to_le_bytes(),
        ]);
        let line = json!({ "event": event, "delivery": delivery, "payload": payload });
        self.items.push((at, sequence, line.to_string()));
    }

    /// Writes the deliveries in time order (ties in the order they were pushed); how many.
    pub fn write(mut self, out: &mut OutFile) -> Result<u64, GenerateError> {
        self.items.sort_by_key(|(at, sequence, _)| (*at, *sequence));
        for (_, _, line) in &self.items {
            out.write(line.as_bytes())?;
            out.write(b"\n")?;
        }
        Ok(self.items.len() as u64)
    }
}

/// A `push` to `main` of one commit (`commit` a REST commit object, `paths` its files,
/// `added` those it creates).
pub fn push_payload(commit: &Value, before: &str, added: &[&str], modified: &[&str]) -> Value {
    let c = &commit["commit"];
    let person = |p: &Value, login: &Value| json!({ "name": p["name"], "email": p["email"], "username": login });
    let author = person(&c["author"], &commit["author"]["login"]);
    let committer = person(&c["committer"], &commit["committer"]["login"]);
    let sha = commit["sha"].as_str().unwrap_or_default();
    let pushed = json!({
        "id": sha,
        "tree_id": c["tree"]["sha"],
        "distinct": true,
        "message": c["message"],
        "timestamp": c["committer"]["date"],
        "url": commit["html_url"],
        "author": author,
        "committer": committer,
        "added": added,
        "removed": [],
        "modified": modified,
    });
    json!({
        "ref": "refs/heads/main",
        "before": before,
        "after": sha,
        "created": false,
        "deleted": false,
        "forced": false,
        "base_ref": null,
        "compare": format!("{}/compare/{}...{}", commit["html_url"].as_str().unwrap_or_default().split("/commit/").next().unwrap_or_default(), &before[..12.min(before.len())], &sha[..12.min(sha.len())]),
        "commits": [pushed.clone()],
        "head_commit": pushed,
        "pusher": { "name": commit["author"]["login"], "email": c["author"]["email"] },
        "sender": commit["author"],
    })
}

/// A `pull_request` delivery.
pub fn pull_request_payload(action: &str, pull: &Value) -> Value {
    json!({ "action": action, "number": pull["number"], "pull_request": pull, "sender": pull["user"] })
}

/// An `issues` delivery.
pub fn issue_payload(action: &str, issue: &Value) -> Value {
    json!({ "action": action, "issue": issue, "sender": issue["user"] })
}

/// A `deployment` delivery (`created`).
pub fn deployment_payload(deployment: &Value) -> Value {
    json!({ "action": "created", "deployment": deployment, "sender": deployment["creator"] })
}

/// A `deployment_status` delivery (`created`): the status and its deployment as of then.
pub fn deployment_status_payload(status: &Value, deployment: &Value) -> Value {
    let mut deployment = deployment.clone();
    deployment["updated_at"] = status["created_at"].clone();
    json!({
        "action": "created",
        "deployment_status": status,
        "deployment": deployment,
        "sender": status["creator"],
    })
}

/// A `workflow_run` delivery (`requested`, `in_progress` or `completed`) of a run as it is at the
/// end; earlier actions show it unfinished.
pub fn workflow_run_payload(action: &str, run: &Value, at: i64) -> Value {
    let mut run = run.clone();
    if action != "completed" {
        run["status"] = json!(if action == "requested" {
            "queued"
        } else {
            "in_progress"
        });
        run["conclusion"] = Value::Null;
        run["updated_at"] = json!(time(at));
    }
    let workflow = json!({
        "id": run["workflow_id"],
        "name": run["name"],
        "path": run["path"],
        "state": "active",
    });
    json!({ "action": action, "workflow_run": run, "workflow": workflow, "sender": run["actor"] })
}

/// A `release` delivery (`published`).
pub fn release_payload(release: &Value) -> Value {
    json!({ "action": "published", "release": release, "sender": release["author"] })
}
