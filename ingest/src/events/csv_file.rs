//! Event records in CSV (docs/events.md § CSV): one kind per file, named by a `type` column or
//! told from the header; empty cells are null; list fields are `;`-separated.

use std::io::Read;
use std::path::Path;

use super::json::{Json, Object};

use super::fields::Place;
use super::generic::{self, CSV_IDS, Kind};
use super::rows::Collector;
use crate::error::IngestError;

/// Columns holding lists, `;`-separated in a cell.
const LIST_COLUMNS: [&str; 3] = ["paths", "labels", "incident_refs"];

/// The kind of every row of a CSV file with these headers; `None` when a `type` column names it
/// row by row.
fn kind_of(origin: &Path, headers: &[String]) -> Result<Option<Kind>, IngestError> {
    let has = |name: &str| headers.iter().any(|h| h == name);
    if has("type") {
        Ok(None)
    } else if has("incident_id") {
        Ok(Some(Kind::Incident))
    } else if has("deployment_id") && has("environment") {
        Ok(Some(Kind::Deployment))
    } else if has("sha") {
        Ok(Some(Kind::Change))
    } else {
        Err(IngestError::invalid(
            origin,
            Some(1),
            None,
            "cannot tell which records this CSV holds: expected a header with a `type` column, or \
             `incident_id` (incidents), `deployment_id` and `environment` (deployments), or `sha` \
             (changes)",
        ))
    }
}

fn csv_error(origin: &Path, error: csv::Error) -> IngestError {
    let line = error.position().map(|p| p.line());
    let message = match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("expected {expected_len} fields as in the header, found {len}")
        }
        csv::ErrorKind::Io(io) => format!("cannot read: {io}"),
        csv::ErrorKind::Utf8 { err, .. } => format!(
            "expected UTF-8 text, found invalid bytes in field {}",
            err.field() + 1
        ),
        _ => error.to_string(),
    };
    IngestError::invalid(origin, line, None, message)
}

/// Reads every row of a CSV into `out`.
pub(super) fn read(
    reader: impl Read,
    origin: &Path,
    out: &mut Collector,
    ingested_at: i64,
) -> Result<(), IngestError> {
    let mut csv = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers: Vec<String> = csv
        .headers()
        .map_err(|e| csv_error(origin, e))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_owned())
        .collect();
    let kind = kind_of(origin, &headers)?;
    let mut record = csv::StringRecord::new();
    while csv
        .read_record(&mut record)
        .map_err(|e| csv_error(origin, e))?
    {
        let line = record.position().map(|p| p.line());
        let mut object = Object::default();
        for (header, cell) in headers.iter().zip(record.iter()) {
            if cell.is_empty() {
                continue;
            }
            let value = if LIST_COLUMNS.contains(&header.as_str()) {
                Json::Array(
                    cell.split(';')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Json::String(s.to_owned().into()))
                        .collect(),
                )
            } else {
                Json::String(cell.to_owned().into())
            };
            object.push(header.as_str(), value);
        }
        let place = Place::root(origin, line);
        generic::read_record(
            &Json::Object(object),
            &place,
            kind,
            &CSV_IDS,
            out,
            ingested_at,
        )?;
    }
    Ok(())
}
