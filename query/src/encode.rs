//! Query results written batch by batch, for answers too large to hold whole (`POST
//! /api/v1/sql`, `doracost sql --format parquet`): JSON, CSV, Arrow IPC stream and Parquet. Each
//! batch becomes bytes at once; only Parquet keeps a row group (at most [`PARQUET_ROW_GROUP`]
//! rows) before it writes it.
//!
//! Every column type is written in every encoding: list, map and struct columns are JSON
//! arrays and objects in JSON, JSON text in CSV (as [`crate::output`] writes them); decimals are
//! exact (text in JSON); timestamps are RFC 3339 text in JSON and CSV.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;

use crate::output::{decimals_as_text, json_lines, nested_as_json};

/// The most rows of a Parquet row group, the one part of an answer held in memory.
pub const PARQUET_ROW_GROUP: usize = 64 * 1024;

/// An encoding of query results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// One JSON object: `columns` (name and Arrow type), `rows` (objects, as `doracost sql
    /// --format json` writes them, nulls written out), `row_count` and `truncated`.
    Json,
    /// CSV with a header row.
    Csv,
    /// The Arrow IPC stream format.
    ArrowIpc,
    /// A Parquet file.
    Parquet,
}

impl Encoding {
    /// The media type it is served as.
    pub fn media_type(self) -> &'static str {
        match self {
            Encoding::Json => "application/json",
            Encoding::Csv => "text/csv; charset=utf-8",
            Encoding::ArrowIpc => "application/vnd.apache.arrow.stream",
            Encoding::Parquet => "application/vnd.apache.parquet",
        }
    }
}

/// How an answer ended, for the encodings that say so in the answer itself (JSON).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ending {
    /// Rows written.
    pub rows: usize,
    /// Rows were left out at the row cap.
    pub truncated: bool,
}

/// Writes one answer: [`Encoder::start`], [`Encoder::batch`] for each batch, [`Encoder::finish`].
pub struct Encoder {
    state: State,
}

enum State {
    Json { first_row: bool },
    Csv,
    ArrowIpc(Box<arrow::ipc::writer::StreamWriter<Vec<u8>>>),
    Parquet(Box<ArrowWriter<Vec<u8>>>),
}

fn parquet_error(e: datafusion::parquet::errors::ParquetError) -> ArrowError {
    ArrowError::ExternalError(Box::new(e))
}

impl Encoder {
    /// An encoder of answers in `schema`, and the bytes that open the answer.
    pub fn start(encoding: Encoding, schema: SchemaRef) -> Result<(Encoder, Vec<u8>), ArrowError> {
        let (state, opening) = match encoding {
            Encoding::Json => {
                let columns: Vec<serde_json::Value> = schema
                    .fields()
                    .iter()
                    .map(|f| {
                        serde_json::json!({ "name": f.name(), "type": f.data_type().to_string() })
                    })
                    .collect();
                let mut opening = br#"{"columns":"#.to_vec();
                serde_json::to_writer(&mut opening, &columns)
                    .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
                opening.extend_from_slice(br#","rows":["#);
                (State::Json { first_row: true }, opening)
            }
            Encoding::Csv => {
                // The header, also for an answer with no rows.
                let empty = nested_as_json(&RecordBatch::new_empty(Arc::clone(&schema)))?;
                let mut opening = Vec::new();
                let mut writer = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut opening);
                writer.write(&empty)?;
                drop(writer);
                (State::Csv, opening)
            }
            Encoding::ArrowIpc => {
                let mut writer = arrow::ipc::writer::StreamWriter::try_new(Vec::new(), &schema)?;
                let opening = std::mem::take(writer.get_mut());
                (State::ArrowIpc(Box::new(writer)), opening)
            }
            Encoding::Parquet => {
                let properties = WriterProperties::builder()
                    .set_max_row_group_row_count(Some(PARQUET_ROW_GROUP))
                    .set_compression(Compression::SNAPPY)
                    .build();
                let writer =
                    ArrowWriter::try_new(Vec::new(), parquet_schema(&schema), Some(properties))
                        .map_err(parquet_error)?;
                (State::Parquet(Box::new(writer)), Vec::new())
            }
        };
        Ok((Encoder { state }, opening))
    }

    /// The bytes of `batch` (none while Parquet fills a row group).
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
        match &mut self.state {
            State::Json { first_row } => {
                let lines = json_lines(&decimals_as_text(batch)?)?;
                let mut out = Vec::with_capacity(lines.len() + batch.num_rows());
                for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    if !*first_row {
                        out.push(b',');
                    }
                    *first_row = false;
                    out.push(b'\n');
                    out.extend_from_slice(line);
                }
                Ok(out)
            }
            State::Csv => {
                let mut out = Vec::new();
                let mut writer = arrow::csv::WriterBuilder::new()
                    .with_header(false)
                    .build(&mut out);
                writer.write(&nested_as_json(batch)?)?;
                drop(writer);
                Ok(out)
            }
            State::ArrowIpc(writer) => {
                writer.write(batch)?;
                Ok(std::mem::take(writer.get_mut()))
            }
            State::Parquet(writer) => {
                let batch = parquet_batch(batch)?;
                writer.write(&batch).map_err(parquet_error)?;
                Ok(std::mem::take(writer.inner_mut()))
            }
        }
    }

    /// The bytes that close the answer.
    pub fn finish(self, ending: Ending) -> Result<Vec<u8>, ArrowError> {
        match self.state {
            State::Json { .. } => Ok(format!(
                "\n],\"row_count\":{},\"truncated\":{}}}\n",
                ending.rows, ending.truncated
            )
            .into_bytes()),
            State::Csv => Ok(Vec::new()),
            State::ArrowIpc(mut writer) => {
                writer.finish()?;
                Ok(std::mem::take(writer.get_mut()))
            }
            State::Parquet(writer) => writer.into_inner().map_err(parquet_error),
        }
    }
}

/// Whether Parquet (as arrow-rs writes it) has no form for `data_type`: those columns are written
/// as their text.
fn parquet_lacks(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Interval(arrow::datatypes::IntervalUnit::MonthDayNano)
    )
}

fn parquet_schema(schema: &SchemaRef) -> SchemaRef {
    if !schema.fields().iter().any(|f| parquet_lacks(f.data_type())) {
        return Arc::clone(schema);
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if parquet_lacks(f.data_type()) {
                Field::new(f.name(), DataType::Utf8, true)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

fn parquet_batch(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let schema = parquet_schema(&batch.schema());
    if Arc::ptr_eq(&schema, &batch.schema()) {
        return Ok(batch.clone());
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| arrow::compute::cast(c, f.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema, columns)
}

#[cfg(test)]
mod tests {
    use arrow::array::{ArrayRef, Decimal128Array, Int64Array, ListBuilder, StringBuilder};

    use super::*;

    fn sample() -> RecordBatch {
        let mut files = ListBuilder::new(StringBuilder::new());
        files.values().append_value("a.rs");
        files.append(true);
        files.append(false);
        let files: ArrayRef = Arc::new(files.finish());
        let cost: ArrayRef = Arc::new(
            Decimal128Array::from(vec![Some(1_500_000_000_001), None])
                .with_precision_and_scale(38, 12)
                .unwrap(),
        );
        let schema = Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("files", files.data_type().clone(), true),
            Field::new("cost", cost.data_type().clone(), true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(Int64Array::from(vec![1, 2])), files, cost],
        )
        .unwrap()
    }

    fn encode(encoding: Encoding, batches: &[RecordBatch]) -> Vec<u8> {
        let (mut encoder, mut out) = Encoder::start(encoding, sample().schema()).unwrap();
        for batch in batches {
            out.extend(encoder.batch(batch).unwrap());
        }
        let rows = batches.iter().map(RecordBatch::num_rows).sum();
        out.extend(
            encoder
                .finish(Ending {
                    rows,
                    truncated: false,
                })
                .unwrap(),
        );
        out
    }

    #[test]
    fn json_is_one_document_with_exact_decimals_and_nested_values() {
        let text = encode(Encoding::Json, &[sample(), sample()]);
        let doc: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(doc["columns"][1]["name"], "files");
        assert_eq!(doc["row_count"], 4);
        assert_eq!(doc["truncated"], false);
        let rows = doc["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0]["files"], serde_json::json!(["a.rs"]));
        assert_eq!(rows[0]["cost"], "1.500000000001");
        assert!(rows[1]["cost"].is_null() && rows[1]["files"].is_null());
        let empty: serde_json::Value =
            serde_json::from_slice(&encode(Encoding::Json, &[])).unwrap();
        assert_eq!(empty["rows"], serde_json::json!([]));
    }

    #[test]
    fn csv_has_its_header_even_without_rows() {
        let text = String::from_utf8(encode(Encoding::Csv, &[sample()])).unwrap();
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            ["n,files,cost", r#"1,"[""a.rs""]",1.500000000001"#, "2,,"]
        );
        let empty = String::from_utf8(encode(Encoding::Csv, &[])).unwrap();
        assert_eq!(empty, "n,files,cost\n");
    }

    #[test]
    fn arrow_and_parquet_read_back_the_same_batches() {
        let bytes = encode(Encoding::ArrowIpc, &[sample(), sample()]);
        let read: Vec<RecordBatch> =
            arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        assert_eq!(read, vec![sample(), sample()]);

        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &encode(Encoding::Parquet, &[sample(), sample()]))
            .unwrap();
        let read: Vec<RecordBatch> =
            datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(file, 1024)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        let rows: usize = read.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, 4);
        assert_eq!(&read[0].column(2).slice(0, 2), sample().column(2));
    }
}
