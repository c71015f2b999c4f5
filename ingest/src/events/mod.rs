//! The generic event format (docs/events.md): deployments, changes and incidents that CI/CD
//! pipelines and incident tools write to files or post to the webhooks, as NDJSON, a JSON array, a
//! JSON object of arrays, or CSV, and Apache DevLake webhook payloads, read into canonical batches.
//!
//! Rows are deduplicated by key across everything one call reads (the lake's MERGE refuses a batch
//! with a key twice). Writing the batches to the lake is the caller's business.

mod csv_file;
mod devlake;
mod fields;
mod generic;
mod json;
pub(crate) mod rows;

#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;
use json::{Json, Object};

use crate::error::IngestError;
use crate::progress::{CountingReader, Progress};
use fields::{Place, describe};
use generic::{JSON_IDS, Kind};
pub use rows::ChunkSink;
use rows::Collector;

/// Canonical rows from event files, deduplicated by key within the batch.
#[derive(Debug, Clone)]
pub struct EventBatches {
    /// Rows of `deployments` (`model::schema::deployments`).
    pub deployments: RecordBatch,
    /// Rows of `changes` (`model::schema::changes`).
    pub changes: RecordBatch,
    /// Rows of `deployment_changes` (`model::schema::deployment_changes`).
    pub deployment_changes: RecordBatch,
    /// Rows of `incidents` (`model::schema::incidents`).
    pub incidents: RecordBatch,
}

impl EventBatches {
    /// The keys these batches write.
    pub fn touched(&self) -> model::Touched {
        let mut deployments = strings(&self.deployments, "deployment_id");
        deployments.extend(strings(&self.deployment_changes, "deployment_id"));
        let mut changes = strings(&self.changes, "change_id");
        changes.extend(strings(&self.deployment_changes, "change_id"));
        model::Touched {
            deployments,
            changes,
            incidents: strings(&self.incidents, "incident_id"),
        }
    }
}

/// The non-null values of a string column (none when the batch lacks it).
fn strings(batch: &RecordBatch, column: &str) -> std::collections::BTreeSet<String> {
    use arrow::array::AsArray;
    let Some(array) = batch.column_by_name(column) else {
        return Default::default();
    };
    match array.as_string_opt::<i32>() {
        Some(values) => values.iter().flatten().map(str::to_owned).collect(),
        None => Default::default(),
    }
}

/// Reads event files (`.ndjson`/`.jsonl`, `.json`, `.csv`; other names are sniffed) into batches.
pub fn read_event_files(
    paths: &[PathBuf],
    ingested_at: chrono::DateTime<chrono::Utc>,
    progress: &mut dyn Progress,
) -> Result<EventBatches, IngestError> {
    let at = ingested_at.timestamp_micros();
    let mut out = Collector::default();
    for path in paths {
        read_file(path, &mut out, at, progress)?;
    }
    let origin = paths.first().cloned().unwrap_or_default();
    finish(out, at, origin)
}

/// Reads event files as [`read_event_files`] does, in bounded memory: the rows go to `sink` in
/// chunks of about `chunk_rows` rows (whole records; each chunk deduplicated in itself), the last
/// one when the files are read. A sink error stops the read and is returned.
pub fn stream_event_files(
    paths: &[PathBuf],
    ingested_at: chrono::DateTime<chrono::Utc>,
    progress: &mut dyn Progress,
    chunk_rows: usize,
    sink: ChunkSink,
) -> Result<(), IngestError> {
    let at = ingested_at.timestamp_micros();
    let mut out = Collector::streaming(chunk_rows, at, sink);
    for path in paths {
        read_file(path, &mut out, at, progress)?;
    }
    if out.skipped_issues > 0 {
        tracing::info!(
            skipped = out.skipped_issues,
            "DevLake issues that are not incidents were skipped"
        );
    }
    out.flush(paths.last().map_or(Path::new(""), PathBuf::as_path))
}

/// The same from one in-memory JSON body (a webhook POST): NDJSON, array, object, or a DevLake payload.
pub fn read_event_json(
    body: &[u8],
    origin: &str,
    ingested_at: chrono::DateTime<chrono::Utc>,
) -> Result<EventBatches, IngestError> {
    let at = ingested_at.timestamp_micros();
    let origin = Path::new(origin);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(IngestError::invalid(
            origin,
            None,
            None,
            "expected JSON, found an empty body",
        ));
    }
    let mut out = Collector::default();
    read_json_body(body, origin, &mut out, at)?;
    finish(out, at, origin.to_owned())
}

/// Several webhook bodies (each accepted by [`read_event_json`] already) read as one batch, rows
/// deduplicated by key across them as one file's records are: what a server commits at once.
pub fn read_event_bodies(
    bodies: &[&[u8]],
    origin: &str,
    ingested_at: chrono::DateTime<chrono::Utc>,
) -> Result<EventBatches, IngestError> {
    let at = ingested_at.timestamp_micros();
    let origin = Path::new(origin);
    let mut out = Collector::default();
    for body in bodies {
        read_json_body(body, origin, &mut out, at)?;
    }
    finish(out, at, origin.to_owned())
}

fn finish(out: Collector, at: i64, origin: PathBuf) -> Result<EventBatches, IngestError> {
    if out.skipped_issues > 0 {
        tracing::info!(
            skipped = out.skipped_issues,
            "DevLake issues that are not incidents were skipped"
        );
    }
    out.finish(at).map_err(|source| IngestError::Arrow {
        path: origin,
        source,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Ndjson,
    Json,
    Csv,
    Unknown,
}

fn format_of(path: &Path) -> Format {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("ndjson" | "jsonl") => Format::Ndjson,
        Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        _ => Format::Unknown,
    }
}

fn read_file(
    path: &Path,
    out: &mut Collector,
    at: i64,
    progress: &mut dyn Progress,
) -> Result<(), IngestError> {
    let io_error = |source| IngestError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io_error)?;
    let mut reader = CountingReader::new(file, progress);
    match format_of(path) {
        Format::Ndjson => read_ndjson(BufReader::with_capacity(1 << 20, reader), path, out, at),
        Format::Csv => csv_file::read(BufReader::with_capacity(1 << 20, reader), path, out, at),
        format @ (Format::Json | Format::Unknown) => {
            let mut body = Vec::new();
            reader.read_to_end(&mut body).map_err(io_error)?;
            let first = body.iter().copied().find(|b| !b.is_ascii_whitespace());
            if format == Format::Unknown && !matches!(first, Some(b'{' | b'[') | None) {
                csv_file::read(body.as_slice(), path, out, at)
            } else {
                read_json_body(&body, path, out, at)
            }
        }
    }
}

/// "invalid JSON …" with serde's message, its position given as line and column of the input.
fn json_error(origin: &Path, line_offset: u64, error: &serde_json::Error) -> IngestError {
    let text = error.to_string();
    let message = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(m, _)| m);
    let line = (error.line() > 0).then(|| line_offset + error.line() as u64);
    IngestError::invalid(
        origin,
        line,
        None,
        format!("invalid JSON at column {}: {message}", error.column()),
    )
}

/// One JSON object per line; blank lines are skipped. Lines are numbered from 1.
fn read_ndjson(
    mut reader: impl BufRead,
    origin: &Path,
    out: &mut Collector,
    at: i64,
) -> Result<(), IngestError> {
    let mut line = Vec::with_capacity(64 * 1024);
    let mut number = 0u64;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|source| IngestError::Io {
                path: origin.to_owned(),
                source,
            })?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        let text = line.trim_ascii();
        let text = text.strip_prefix("\u{feff}".as_bytes()).unwrap_or(text);
        if text.is_empty() {
            continue;
        }
        let value: Json<'_> =
            serde_json::from_slice(text).map_err(|e| json_error(origin, number - 1, &e))?;
        let place = Place::root(origin, Some(number));
        generic::read_record(&value, &place, None, &JSON_IDS, out, at)?;
    }
}

/// The keys of the object-of-arrays form, and the kind each names.
const ARRAYS: [(&str, Kind); 3] = [
    ("deployments", Kind::Deployment),
    ("changes", Kind::Change),
    ("incidents", Kind::Incident),
];

/// A whole JSON document: an array of records, an object of arrays, one record, or several
/// top-level values one after another (NDJSON, or concatenated objects).
fn read_json_body(
    body: &[u8],
    origin: &Path,
    out: &mut Collector,
    at: i64,
) -> Result<(), IngestError> {
    let body = body.strip_prefix("\u{feff}".as_bytes()).unwrap_or(body);
    let mut values = serde_json::Deserializer::from_slice(body).into_iter::<Json<'_>>();
    let first = match values.next() {
        None => return Ok(()),
        Some(value) => value.map_err(|e| json_error(origin, 0, &e))?,
    };
    if values.next().is_some() {
        return read_json_stream(body, origin, out, at);
    }
    // A single document: positions are element paths, which point into it as well as lines would.
    let root = Place::root(origin, None);
    match &first {
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                generic::read_record(item, &root.index(i), None, &JSON_IDS, out, at)?;
            }
        }
        Json::Object(object) if is_object_of_arrays(object) => {
            for (key, kind) in ARRAYS {
                let place = root.key(key);
                match object.get(key) {
                    None | Some(Json::Null) => {}
                    Some(Json::Array(items)) => {
                        for (i, item) in items.iter().enumerate() {
                            generic::read_record(
                                item,
                                &place.index(i),
                                Some(kind),
                                &JSON_IDS,
                                out,
                                at,
                            )?;
                        }
                    }
                    Some(other) => {
                        return Err(place.error(format!(
                            "expected an array of records, found {}",
                            describe(other)
                        )));
                    }
                }
            }
        }
        Json::Object(_) => {
            let line = first_line(body);
            generic::read_record(
                &first,
                &Place::root(origin, Some(line)),
                None,
                &JSON_IDS,
                out,
                at,
            )?;
        }
        other => {
            return Err(IngestError::invalid(
                origin,
                Some(1),
                None,
                format!("expected a JSON object or array, found {}", describe(other)),
            ));
        }
    }
    Ok(())
}

/// The line on which a one-value document's value starts (after leading blank lines).
fn first_line(body: &[u8]) -> u64 {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    1 + body[..start].iter().filter(|&&b| b == b'\n').count() as u64
}

/// `{"deployments": [...], ...}`: an object without `type` that has one of the array keys. A lone
/// `changes` key beside deployment fields is a deployment that forgot its `type`, not this form.
fn is_object_of_arrays(object: &Object<'_>) -> bool {
    let has = |key: &str| object.contains_key(key);
    !has("type")
        && (has("deployments")
            || has("incidents")
            || (has("changes") && !["id", "commit_sha", "environment"].into_iter().any(has)))
}

/// Several top-level values: each is a record, numbered by the line it starts on.
fn read_json_stream(
    body: &[u8],
    origin: &Path,
    out: &mut Collector,
    at: i64,
) -> Result<(), IngestError> {
    let mut values = serde_json::Deserializer::from_slice(body).into_iter::<Json<'_>>();
    let mut start = 0;
    let mut line = 1u64;
    loop {
        let value = match values.next() {
            None => return Ok(()),
            Some(value) => value.map_err(|e| json_error(origin, 0, &e))?,
        };
        let end = values.byte_offset();
        let begins = body[start..end]
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .map_or(end, |p| start + p);
        line += body[start..begins].iter().filter(|&&b| b == b'\n').count() as u64;
        generic::read_record(
            &value,
            &Place::root(origin, Some(line)),
            None,
            &JSON_IDS,
            out,
            at,
        )?;
        line += body[begins..end].iter().filter(|&&b| b == b'\n').count() as u64;
        start = end;
    }
}
