//! Query results as people and machines read them: a text table, CSV, JSON.

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow::error::ArrowError;

/// How to render results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// CSV with a header row.
    Csv,
    /// A JSON array of objects.
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "table" => Ok(Format::Table),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            other => Err(format!(
                "unknown format `{other}`: expected table, csv or json"
            )),
        }
    }
}

/// Renders batches (with `schema`, so that an empty result still has its header) in `format`.
pub fn render(
    schema: &Schema,
    batches: &[RecordBatch],
    format: Format,
) -> Result<Vec<u8>, ArrowError> {
    match format {
        Format::Table => {
            let text = if batches.iter().all(|b| b.num_rows() == 0) {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                format!("{}\n(0 rows)\n", names.join(" | "))
            } else {
                let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
                format!(
                    "{}\n({rows} row{})\n",
                    arrow::util::pretty::pretty_format_batches(batches)?,
                    if rows == 1 { "" } else { "s" }
                )
            };
            Ok(text.into_bytes())
        }
        Format::Csv => {
            let mut out = Vec::new();
            if batches.is_empty() {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                out.extend_from_slice(names.join(",").as_bytes());
                out.push(b'\n');
                return Ok(out);
            }
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            for batch in batches {
                writer.write(batch)?;
            }
            drop(writer);
            Ok(out)
        }
        Format::Json => {
            let mut out = Vec::new();
            let mut writer = arrow::json::ArrayWriter::new(&mut out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            drop(writer);
            if out.is_empty() {
                out.extend_from_slice(b"[]");
            }
            out.push(b'\n');
            Ok(out)
        }
    }
}
