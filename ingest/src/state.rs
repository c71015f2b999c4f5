//! `ingest_state` rows: a source's cursor per scope, written in the same unit as the rows it
//! covers, so a killed ingest resumes from the cursor of what landed.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringBuilder, TimestampMicrosecondArray};
use arrow::error::ArrowError;
use chrono::{DateTime, Utc};

/// One `ingest_state` row per `(scope, cursor, etag)` of `source`, successful at `at`.
pub fn rows<'a>(
    source: &str,
    scopes: impl IntoIterator<Item = (&'a str, Option<&'a str>, Option<&'a str>)>,
    at: DateTime<Utc>,
) -> Result<RecordBatch, ArrowError> {
    let (mut sources, mut scope_col, mut cursors, mut etags, mut errors) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let mut n = 0;
    for (scope, cursor, etag) in scopes {
        sources.append_value(source);
        scope_col.append_value(scope);
        cursors.append_option(cursor);
        etags.append_option(etag);
        errors.append_null();
        n += 1;
    }
    let micros = at.timestamp_micros();
    let time = || -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from(vec![micros; n]).with_timezone("UTC"))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(sources.finish()),
        Arc::new(scope_col.finish()),
        Arc::new(cursors.finish()),
        Arc::new(etags.finish()),
        time(),
        Arc::new(errors.finish()),
        time(),
    ];
    RecordBatch::try_new(model::schema::ingest_state(), columns)
}

/// [`rows`] as the upsert of `ingest_state` that lands with the rows the cursors cover.
pub fn upsert<'a>(
    source: &str,
    scopes: impl IntoIterator<Item = (&'a str, Option<&'a str>, Option<&'a str>)>,
    at: DateTime<Utc>,
) -> Result<model::TableWrite, model::LakeError> {
    let batch = rows(source, scopes, at).map_err(|e| model::LakeError::Input {
        message: e.to_string(),
    })?;
    Ok(model::TableWrite::Upsert {
        table: model::Table::IngestState,
        batches: vec![batch],
    })
}
