//! Pull requests: the ground truth's, squash-merged into main as their change's commit, with
//! their branch commits and reviews; and how a PR shows in the issues list.

use serde_json::{Value, json};

use crate::GenerateError;
use crate::commits::Developer;
use crate::writers::github::objects::{
    self, CommitParts, IssueParts, PullParts, account_id, hash, hex40, user,
};
use crate::writers::github::repo::{Context, Listed, Out};
use crate::writers::github::webhooks::pull_request_payload;
use crate::writers::github::{LINT_ACCOUNT, REVIEW_BOT};

/// The truth's PRs: `pulls/<n>/commits.json` and `reviews.json` written, `pull_request`
/// deliveries sent; the PRs and their issue-list entries, and the highest PR number.
pub(super) fn merged(
    ctx: &Context<'_>,
    out: &mut Out<'_>,
) -> Result<(Vec<Listed>, Vec<Listed>, u64), GenerateError> {
    let Context {
        history,
        full_name,
        repo_id,
        ref identities,
        ..
    } = *ctx;
    let changes = &history.changes;
    let Out {
        files,
        hooks,
        summary,
    } = out;
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
        let base_sha = ctx.tip_at(pr.opened_at);
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

    Ok((pulls, issues, max_number))
}

/// The commits of a PR branch (`1 + number % 3`), oldest first, the first at `first_commit_at`
/// (where lead time starts), the rest before `opened_at`.
pub(super) fn branch_commits(
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
pub(super) fn branch_commit_objects(
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
pub(super) fn opened(pull: &Value, at: i64) -> Value {
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
pub(super) fn pr_as_issue(
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
