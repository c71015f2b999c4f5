//! Which commits a head-only deployment shipped: those reachable from its head and not from the
//! head of the previous successful deployment of its service and environment (DESIGN §4 "Lead
//! time for changes"), restricted for a path-mapped service to the commits that are its own.

use std::collections::HashMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::TimestampMicrosecondType;
use model::config::ServiceConfig;

use super::ReadRepo;

/// The deployments completed, with the commits each shipped (indexes into the history).
pub(super) struct Filled {
    pub(super) deployments: Vec<(String, Vec<u32>)>,
    pub(super) heads_missing: u64,
}

/// One deployment row of the repository.
struct Row {
    id: String,
    service: Option<String>,
    environment: String,
    head: Option<String>,
    at: Option<i64>,
    success: bool,
    listed: bool,
}

fn rows(batches: &[RecordBatch], repo: &str) -> Result<Vec<Row>, String> {
    let mut out = Vec::new();
    for batch in batches {
        let text =
            |name: &str| super::utf8_column(batch, name).map_err(|e| format!("deployments: {e}"));
        let time = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
                .ok_or_else(|| format!("deployments.{name} is missing or not a timestamp"))
        };
        let (id, service, repos, environment, sha, status) = (
            &text("deployment_id")?,
            &text("service")?,
            &text("repo")?,
            &text("environment")?,
            &text("commit_sha")?,
            &text("status")?,
        );
        let (started, finished) = (time("started_at")?, time("finished_at")?);
        let listed = batch
            .column_by_name("commits_listed")
            .and_then(|c| c.as_boolean_opt())
            .ok_or("deployments.commits_listed is missing or not a boolean")?;
        let get = |array: &arrow::array::StringArray, row: usize| {
            (!array.is_null(row)).then(|| array.value(row).to_owned())
        };
        for row in 0..batch.num_rows() {
            if repos.is_null(row) || repos.value(row) != repo {
                continue;
            }
            // Deployments follow each other in the order they start (a later one may finish
            // first); a source without start times orders by finish.
            let at = if !started.is_null(row) {
                Some(started.value(row))
            } else if !finished.is_null(row) {
                Some(finished.value(row))
            } else {
                None
            };
            out.push(Row {
                id: id.value(row).to_owned(),
                service: get(service, row),
                environment: get(environment, row).unwrap_or_default().to_lowercase(),
                head: get(sha, row),
                at,
                success: !status.is_null(row) && status.value(row) == "success",
                listed: !listed.is_null(row) && listed.value(row),
            });
        }
    }
    Ok(out)
}

/// The config's path attribution in one repository.
pub(crate) struct Attribution<'a> {
    /// Services owning the whole repository.
    whole: bool,
    /// Path-mapped services and their prefixes.
    mapped: Vec<(&'a str, &'a [String])>,
}

impl<'a> Attribution<'a> {
    pub(crate) fn new(services: &'a [ServiceConfig], repo: &str) -> Attribution<'a> {
        let mut attribution = Attribution {
            whole: false,
            mapped: Vec::new(),
        };
        for service in services
            .iter()
            .filter(|s| s.repos.iter().any(|r| r == repo))
        {
            if service.paths.is_empty() {
                attribution.whole = true;
            } else {
                attribution
                    .mapped
                    .push((service.name.as_str(), service.paths.as_slice()));
            }
        }
        attribution
    }

    /// Whether a commit touching `paths` is a change of `service` (or of none, then of whoever
    /// ships it): always, unless `service` is path-mapped here.
    pub(crate) fn keeps(&self, service: Option<&str>, paths: &[String]) -> bool {
        let Some(service) = service else {
            return true;
        };
        let Some((_, own)) = self.mapped.iter().find(|(name, _)| *name == service) else {
            return true;
        };
        let touches = |prefixes: &[String]| {
            paths
                .iter()
                .any(|p| prefixes.iter().any(|prefix| p.starts_with(prefix.as_str())))
        };
        if touches(own) {
            return true;
        }
        !self.whole && !self.mapped.iter().any(|(_, prefixes)| touches(prefixes))
    }
}

/// Ancestor sets over one history, reused from one deployment to the next: the previous base's
/// ancestors are extended when the new base descends from it, recomputed otherwise.
struct Walker<'h> {
    parents: Vec<&'h [u32]>,
    /// Ancestors of `base` (inclusive).
    marked: Vec<bool>,
    base: Option<u32>,
    seen: Vec<u32>,
    stamp: u32,
}

impl<'h> Walker<'h> {
    fn new(history: &'h super::history::History) -> Walker<'h> {
        let n = history.commits.len();
        Walker {
            parents: history
                .commits
                .iter()
                .map(|c| c.parents.as_slice())
                .collect(),
            marked: vec![false; n],
            base: None,
            seen: vec![0; n],
            stamp: 0,
        }
    }

    fn set_base(&mut self, base: Option<u32>) {
        if base == self.base {
            return;
        }
        let Some(new) = base else {
            self.marked.iter_mut().for_each(|m| *m = false);
            self.base = None;
            return;
        };
        // Extend from the new base, stopping at what is marked; if the old base was reached the
        // union is exactly the new base's ancestors.
        let mut reached_old = self.base.is_none();
        let mut added = Vec::new();
        let mut stack = vec![new];
        while let Some(at) = stack.pop() {
            if Some(at) == self.base {
                reached_old = true;
            }
            if self.marked[at as usize] {
                continue;
            }
            self.marked[at as usize] = true;
            added.push(at);
            stack.extend_from_slice(self.parents[at as usize]);
        }
        if !reached_old {
            self.marked.iter_mut().for_each(|m| *m = false);
            let mut stack = vec![new];
            while let Some(at) = stack.pop() {
                if !self.marked[at as usize] {
                    self.marked[at as usize] = true;
                    stack.extend_from_slice(self.parents[at as usize]);
                }
            }
        }
        self.base = Some(new);
    }

    /// Ancestors of `head` (inclusive) that are not ancestors of the base.
    fn range(&mut self, head: u32) -> Vec<u32> {
        self.stamp += 1;
        let mut out = Vec::new();
        let mut stack = vec![head];
        while let Some(at) = stack.pop() {
            let i = at as usize;
            if self.marked[i] || self.seen[i] == self.stamp {
                continue;
            }
            self.seen[i] = self.stamp;
            out.push(at);
            stack.extend_from_slice(self.parents[i]);
        }
        out
    }
}

pub(super) fn fill(
    read: &ReadRepo,
    deployments: &[RecordBatch],
    services: &[ServiceConfig],
) -> Result<Filled, String> {
    let mut rows = rows(deployments, &read.name)?;
    let mut filled = Filled {
        deployments: Vec::new(),
        heads_missing: 0,
    };
    if !rows.iter().any(|r| !r.listed) {
        return Ok(filled);
    }
    rows.sort_by(|a, b| {
        (&a.service, &a.environment, a.at, &a.id).cmp(&(&b.service, &b.environment, b.at, &b.id))
    });
    let attribution = Attribution::new(services, &read.name);
    let index: HashMap<String, u32> = read
        .history
        .index
        .iter()
        .map(|(id, &at)| (id.to_string(), at))
        .collect();
    let mut walker = Walker::new(&read.history);
    let mut group: Option<(&Option<String>, &String)> = None;
    // The previous success's head: `None` before the first, `Some(None)` when its head is not in
    // the repository (then the next deployments' ranges are unknown).
    let mut previous: Option<Option<u32>> = None;
    for row in &rows {
        if group != Some((&row.service, &row.environment)) {
            group = Some((&row.service, &row.environment));
            previous = None;
        }
        let head = row.head.as_ref().and_then(|sha| index.get(sha).copied());
        if !row.listed {
            match (head, previous) {
                (Some(head), None) | (Some(head), Some(Some(_))) => {
                    walker.set_base(previous.flatten());
                    let shipped: Vec<u32> = walker
                        .range(head)
                        .into_iter()
                        .filter(|&at| {
                            let paths = read.paths[at as usize].as_deref().unwrap_or_default();
                            attribution.keeps(row.service.as_deref(), paths)
                        })
                        .collect();
                    filled.deployments.push((row.id.clone(), shipped));
                }
                _ => filled.heads_missing += 1,
            }
        }
        if row.success && row.at.is_some() {
            previous = Some(head);
        }
    }
    Ok(filled)
}
