//! Canonical rows as the event readers produce them, deduplicated by key, and their Arrow batches.
//!
//! The lake's MERGE fails when one batch holds a source key twice, so every key appears once here:
//! a later deployment or incident replaces an earlier one; a change merges field by field, the
//! first non-null value winning, since the same commit is listed by several deployments.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Int64Builder, ListBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::EventBatches;

/// Deployment status, normalised (DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Success,
    Failure,
    Cancelled,
}

impl Status {
    /// The accepted spellings (docs/events.md), case-insensitive.
    pub(crate) fn parse(text: &str) -> Option<Status> {
        const SYNONYMS: [(&str, Status); 7] = [
            ("success", Status::Success),
            ("succeeded", Status::Success),
            ("failure", Status::Failure),
            ("failed", Status::Failure),
            ("error", Status::Failure),
            ("cancelled", Status::Cancelled),
            ("canceled", Status::Cancelled),
        ];
        SYNONYMS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
            .map(|&(_, status)| status)
    }

    fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Failure => "failure",
            Status::Cancelled => "cancelled",
        }
    }
}

/// One `deployments` row, with the change ids its record listed (or its head commit).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeploymentRow {
    pub(crate) deployment_id: String,
    pub(crate) source: String,
    pub(crate) service: Option<String>,
    pub(crate) repo: Option<String>,
    pub(crate) environment: String,
    pub(crate) git_ref: Option<String>,
    pub(crate) commit_sha: Option<String>,
    pub(crate) started_at: Option<i64>,
    pub(crate) finished_at: Option<i64>,
    pub(crate) status: Status,
    pub(crate) is_rollback: bool,
    pub(crate) url: Option<String>,
    pub(crate) commits_listed: bool,
    /// The one deployment this row is part of, when its source made a row per repo of it.
    pub(crate) deployment_group: Option<String>,
    /// `deployment_changes` of this record, as indexes of [`Collector`]'s changes: replaced with
    /// the record when a later one replaces it.
    pub(crate) shipped: Vec<usize>,
}

/// One `changes` row.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ChangeRow {
    pub(crate) change_id: String,
    pub(crate) source: String,
    pub(crate) service: Option<String>,
    pub(crate) repo: String,
    pub(crate) sha: String,
    pub(crate) authored_at: Option<i64>,
    pub(crate) committed_at: Option<i64>,
    pub(crate) paths: Option<Vec<String>>,
    pub(crate) pr_number: Option<i64>,
    pub(crate) pr_first_commit_at: Option<i64>,
    pub(crate) pr_opened_at: Option<i64>,
    pub(crate) pr_first_review_at: Option<i64>,
    pub(crate) pr_merged_at: Option<i64>,
    pub(crate) pr_head_branch: Option<String>,
    pub(crate) labels: Option<Vec<String>>,
    pub(crate) incident_refs: Option<Vec<String>>,
}

impl ChangeRow {
    /// The row for a commit known only by repo and sha (a deployment's head commit).
    pub(crate) fn minimal(source: &str, repo: &str, sha: &str) -> ChangeRow {
        ChangeRow {
            change_id: change_id(repo, sha),
            source: source.to_owned(),
            repo: repo.to_owned(),
            sha: sha.to_owned(),
            ..ChangeRow::default()
        }
    }

    /// Fills every null field of `self` from `later`: the first non-null value wins.
    fn merge(&mut self, later: ChangeRow) {
        fn fill<T>(slot: &mut Option<T>, later: Option<T>) {
            if slot.is_none() {
                *slot = later;
            }
        }
        fill(&mut self.service, later.service);
        fill(&mut self.authored_at, later.authored_at);
        fill(&mut self.committed_at, later.committed_at);
        fill(&mut self.paths, later.paths);
        fill(&mut self.pr_number, later.pr_number);
        fill(&mut self.pr_first_commit_at, later.pr_first_commit_at);
        fill(&mut self.pr_opened_at, later.pr_opened_at);
        fill(&mut self.pr_first_review_at, later.pr_first_review_at);
        fill(&mut self.pr_merged_at, later.pr_merged_at);
        fill(&mut self.pr_head_branch, later.pr_head_branch);
        fill(&mut self.labels, later.labels);
        fill(&mut self.incident_refs, later.incident_refs);
    }
}

/// One `incidents` row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IncidentRow {
    pub(crate) incident_id: String,
    pub(crate) source: String,
    pub(crate) service: Option<String>,
    pub(crate) title: Option<String>,
    pub(crate) severity: Option<String>,
    pub(crate) started_at: i64,
    pub(crate) resolved_at: Option<i64>,
    pub(crate) caused_by_deployment_id: Option<String>,
    pub(crate) caused_by_sha: Option<String>,
    pub(crate) url: Option<String>,
}

/// `{source}:deployment:{id}` (DESIGN §3).
pub(crate) fn deployment_id(source: &str, id: &str) -> String {
    format!("{source}:deployment:{id}")
}

/// `{source}:incident:{id}`.
pub(crate) fn incident_id(source: &str, id: &str) -> String {
    format!("{source}:incident:{id}")
}

/// `{repo}:{sha}`.
pub(crate) fn change_id(repo: &str, sha: &str) -> String {
    let mut id = String::with_capacity(repo.len() + sha.len() + 1);
    id.push_str(repo);
    id.push(':');
    id.push_str(sha);
    id
}

/// The Fx hash (rustc's): keys here are ids of a few dozen bytes, millions of them in a large
/// ingest, and SipHash's flood resistance buys nothing against our own input files or a
/// size-limited webhook body, while costing a fifth of the read time.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        for &byte in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(K);
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.write(&[byte]);
    }

    fn write_usize(&mut self, value: usize) {
        self.write(&value.to_le_bytes());
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
type FastSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

/// Where a streamed read hands each full chunk of rows (see [`Collector::streaming`]).
pub type ChunkSink = Box<dyn FnMut(EventBatches) -> Result<(), crate::IngestError> + Send>;

/// Rows of one read, deduplicated by key, in order of first appearance; with a sink, handed on
/// in chunks of about `chunk_rows` rows, each deduplicated in itself (the lake's upsert merges a
/// chunk's rows into the earlier chunks' as it merges two ingests, a change's fields included).
#[derive(Default)]
pub(crate) struct Collector {
    /// Rows held: deployments, changes, their links and incidents.
    rows: usize,
    /// Hand the rows to `sink` once `rows` reaches this (0: never; all at the end).
    chunk_rows: usize,
    sink: Option<ChunkSink>,
    /// The `ingested_at` of every row (microseconds), for the chunks' batches.
    ingested_at: i64,
    deployments: Vec<DeploymentRow>,
    deployment_at: FastMap<String, usize>,
    changes: Vec<ChangeRow>,
    change_at: FastMap<String, usize>,
    /// (deployment_id, change index, source) from standalone change records.
    links: Vec<(String, usize, String)>,
    incidents: Vec<IncidentRow>,
    incident_at: FastMap<String, usize>,
    /// DevLake issues read that are not incidents.
    pub(crate) skipped_issues: u64,
}

impl Collector {
    /// A collector that hands its rows to `sink` in chunks of about `chunk_rows` rows, whole
    /// records only (see [`Collector::record_done`]); what is left goes with [`Collector::flush`].
    pub(crate) fn streaming(chunk_rows: usize, ingested_at: i64, sink: ChunkSink) -> Collector {
        Collector {
            chunk_rows,
            sink: Some(sink),
            ingested_at,
            ..Collector::default()
        }
    }

    /// A record has been read whole: a full chunk goes to the sink now.
    pub(crate) fn record_done(
        &mut self,
        origin: &std::path::Path,
    ) -> Result<(), crate::IngestError> {
        if self.chunk_rows > 0 && self.rows >= self.chunk_rows {
            self.flush(origin)?;
        }
        Ok(())
    }

    /// Hands the rows held to the sink (nothing without one, or with no rows).
    pub(crate) fn flush(&mut self, origin: &std::path::Path) -> Result<(), crate::IngestError> {
        if self.rows == 0 {
            return Ok(());
        }
        let Some(mut sink) = self.sink.take() else {
            return Ok(());
        };
        let next = Collector {
            chunk_rows: self.chunk_rows,
            ingested_at: self.ingested_at,
            skipped_issues: self.skipped_issues,
            ..Collector::default()
        };
        let full = std::mem::replace(self, next);
        let batches = full
            .finish(self.ingested_at)
            .map_err(|source| crate::IngestError::Arrow {
                path: origin.to_owned(),
                source,
            });
        let sent = batches.and_then(&mut sink);
        self.sink = Some(sink);
        sent
    }

    /// The shas of the changes held.
    pub(crate) fn change_shas(&self) -> Vec<String> {
        self.changes.iter().map(|c| c.sha.clone()).collect()
    }

    /// Adds a deployment; a later record of the same key replaces the earlier one in place.
    pub(crate) fn deployment(&mut self, row: DeploymentRow) {
        self.rows += 1 + row.shipped.len();
        match self.deployment_at.get(&row.deployment_id) {
            Some(&i) => self.deployments[i] = row,
            None => {
                self.deployment_at
                    .insert(row.deployment_id.clone(), self.deployments.len());
                self.deployments.push(row);
            }
        }
    }

    /// Adds a change, merging it into an earlier row of the same key; returns the row's index
    /// (what [`DeploymentRow::shipped`] and [`Collector::link`] take).
    pub(crate) fn change(&mut self, row: ChangeRow) -> usize {
        match self.change_at.get(&row.change_id) {
            Some(&i) => {
                self.changes[i].merge(row);
                i
            }
            None => {
                self.rows += 1;
                let i = self.changes.len();
                self.change_at.insert(row.change_id.clone(), i);
                self.changes.push(row);
                i
            }
        }
    }

    /// Records that `deployment_id` shipped change `change` (a standalone change record said so).
    pub(crate) fn link(&mut self, deployment_id: String, change: usize, source: String) {
        self.rows += 1;
        self.links.push((deployment_id, change, source));
    }

    /// Adds an incident; a later record of the same key replaces the earlier one in place.
    pub(crate) fn incident(&mut self, row: IncidentRow) {
        self.rows += 1;
        match self.incident_at.get(&row.incident_id) {
            Some(&i) => self.incidents[i] = row,
            None => {
                self.incident_at
                    .insert(row.incident_id.clone(), self.incidents.len());
                self.incidents.push(row);
            }
        }
    }

    /// The four batches, in the schemas of `model::schema`.
    pub(crate) fn finish(self, ingested_at: i64) -> Result<EventBatches, ArrowError> {
        let deployment_changes = self.deployment_changes_batch(ingested_at)?;
        Ok(EventBatches {
            deployments: deployments_batch(&self.deployments, ingested_at)?,
            changes: changes_batch(&self.changes, ingested_at)?,
            deployment_changes,
            incidents: incidents_batch(&self.incidents, ingested_at)?,
        })
    }

    fn deployment_changes_batch(&self, ingested_at: i64) -> Result<RecordBatch, ArrowError> {
        let listed = self.deployments.iter().flat_map(|d| {
            d.shipped
                .iter()
                .map(move |&c| (d.deployment_id.as_str(), c, d.source.as_str()))
        });
        let linked = self
            .links
            .iter()
            .map(|(d, c, s)| (d.as_str(), *c, s.as_str()));
        let mut seen = FastSet::default();
        let mut deployment_id = StringBuilder::new();
        let mut change_id = StringBuilder::new();
        let mut source = StringBuilder::new();
        let mut rows = 0;
        for (d, c, s) in listed.chain(linked) {
            if seen.insert((d, c)) {
                deployment_id.append_value(d);
                change_id.append_value(&self.changes[c].change_id);
                source.append_value(s);
                rows += 1;
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(deployment_id.finish()),
            Arc::new(change_id.finish()),
            Arc::new(source.finish()),
            constant_timestamp(ingested_at, rows),
        ];
        RecordBatch::try_new(model::schema::deployment_changes(), columns)
    }
}

fn constant_timestamp(micros: i64, rows: usize) -> ArrayRef {
    let mut b = TimestampMicrosecondBuilder::with_capacity(rows);
    b.append_value_n(micros, rows);
    Arc::new(b.finish().with_timezone("UTC"))
}

/// A string column from one field of every row.
fn strings<'r, R: 'r>(rows: &'r [R], value: impl Fn(&'r R) -> Option<&'r str>) -> ArrayRef {
    let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 16);
    for row in rows {
        b.append_option(value(row));
    }
    Arc::new(b.finish())
}

fn timestamps<R>(rows: &[R], value: impl Fn(&R) -> Option<i64>) -> ArrayRef {
    let mut b = TimestampMicrosecondBuilder::with_capacity(rows.len());
    for row in rows {
        b.append_option(value(row));
    }
    Arc::new(b.finish().with_timezone("UTC"))
}

fn booleans<R>(rows: &[R], value: impl Fn(&R) -> bool) -> ArrayRef {
    let mut b = BooleanBuilder::with_capacity(rows.len());
    for row in rows {
        b.append_value(value(row));
    }
    Arc::new(b.finish())
}

fn string_lists<'r, R: 'r>(
    rows: &'r [R],
    value: impl Fn(&'r R) -> Option<&'r [String]>,
) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new()).with_field(Field::new(
        "element",
        DataType::Utf8,
        true,
    ));
    for row in rows {
        match value(row) {
            Some(items) => {
                for item in items {
                    b.values().append_value(item);
                }
                b.append(true);
            }
            None => b.append(false),
        }
    }
    Arc::new(b.finish())
}

fn deployments_batch(rows: &[DeploymentRow], ingested_at: i64) -> Result<RecordBatch, ArrowError> {
    let columns = vec![
        strings(rows, |r| Some(&r.deployment_id)),
        strings(rows, |r| Some(&r.source)),
        constant_timestamp(ingested_at, rows.len()),
        strings(rows, |r| r.service.as_deref()),
        strings(rows, |r| r.repo.as_deref()),
        strings(rows, |r| Some(&r.environment)),
        strings(rows, |r| r.git_ref.as_deref()),
        strings(rows, |r| r.commit_sha.as_deref()),
        timestamps(rows, |r| r.started_at),
        timestamps(rows, |r| r.finished_at),
        strings(rows, |r| Some(r.status.as_str())),
        booleans(rows, |r| r.is_rollback),
        strings(rows, |r| r.url.as_deref()),
        booleans(rows, |r| r.commits_listed),
        strings(rows, |r| r.deployment_group.as_deref()),
    ];
    RecordBatch::try_new(model::schema::deployments(), columns)
}

fn changes_batch(rows: &[ChangeRow], ingested_at: i64) -> Result<RecordBatch, ArrowError> {
    let mut pr_number = Int64Builder::with_capacity(rows.len());
    for row in rows {
        pr_number.append_option(row.pr_number);
    }
    let columns = vec![
        strings(rows, |r| Some(&r.change_id)),
        strings(rows, |r| Some(&r.source)),
        constant_timestamp(ingested_at, rows.len()),
        strings(rows, |r| r.service.as_deref()),
        strings(rows, |r| Some(&r.repo)),
        strings(rows, |r| Some(&r.sha)),
        timestamps(rows, |r| r.authored_at),
        timestamps(rows, |r| r.committed_at),
        string_lists(rows, |r| r.paths.as_deref()),
        Arc::new(pr_number.finish()),
        timestamps(rows, |r| r.pr_first_commit_at),
        timestamps(rows, |r| r.pr_opened_at),
        timestamps(rows, |r| r.pr_first_review_at),
        timestamps(rows, |r| r.pr_merged_at),
        strings(rows, |r| r.pr_head_branch.as_deref()),
        string_lists(rows, |r| r.labels.as_deref()),
        string_lists(rows, |r| r.incident_refs.as_deref()),
    ];
    RecordBatch::try_new(model::schema::changes(), columns)
}

fn incidents_batch(rows: &[IncidentRow], ingested_at: i64) -> Result<RecordBatch, ArrowError> {
    let columns = vec![
        strings(rows, |r| Some(&r.incident_id)),
        strings(rows, |r| Some(&r.source)),
        constant_timestamp(ingested_at, rows.len()),
        strings(rows, |r| r.service.as_deref()),
        strings(rows, |r| r.title.as_deref()),
        strings(rows, |r| r.severity.as_deref()),
        timestamps(rows, |r| Some(r.started_at)),
        timestamps(rows, |r| r.resolved_at),
        strings(rows, |r| r.caused_by_deployment_id.as_deref()),
        strings(rows, |r| r.caused_by_sha.as_deref()),
        strings(rows, |r| r.url.as_deref()),
        // `acknowledged_at`: the event formats do not carry it.
        timestamps(rows, |_| None),
    ];
    RecordBatch::try_new(model::schema::incidents(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_synonyms_any_case() {
        assert_eq!(Status::parse("SUCCEEDED"), Some(Status::Success));
        assert_eq!(Status::parse("Error"), Some(Status::Failure));
        assert_eq!(Status::parse("failed"), Some(Status::Failure));
        assert_eq!(Status::parse("Canceled"), Some(Status::Cancelled));
        assert_eq!(Status::parse("cancelled"), Some(Status::Cancelled));
        assert_eq!(Status::parse("done"), None);
    }

    #[test]
    fn change_merge_keeps_first_non_null() {
        let mut first = ChangeRow::minimal("events", "acme/shop", "abc");
        first.pr_number = Some(1);
        let mut later = ChangeRow::minimal("other", "acme/shop", "abc");
        later.pr_number = Some(2);
        later.committed_at = Some(5);
        let mut collector = Collector::default();
        collector.change(first);
        collector.change(later);
        assert_eq!(collector.changes.len(), 1);
        let merged = &collector.changes[0];
        assert_eq!(
            (
                merged.source.as_str(),
                merged.pr_number,
                merged.committed_at
            ),
            ("events", Some(1), Some(5))
        );
    }

    #[test]
    fn empty_batches_have_the_canonical_schemas() {
        let batches = Collector::default().finish(0).unwrap();
        assert_eq!(batches.deployments.schema(), model::schema::deployments());
        assert_eq!(batches.changes.schema(), model::schema::changes());
        assert_eq!(
            batches.deployment_changes.schema(),
            model::schema::deployment_changes()
        );
        assert_eq!(batches.incidents.schema(), model::schema::incidents());
    }
}
