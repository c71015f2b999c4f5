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
                writer.write(&nested_as_json(batch)?)?;
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

/// `batch` as JSON lines, one object per row, nulls written out.
pub fn json_lines(batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
    let mut lines = Vec::new();
    let mut writer = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow::json::writer::LineDelimited>(&mut lines);
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    Ok(lines)
}

/// `batch` with its decimal columns as text: exact (money is never a float), and JSON readers
/// do not round them to a double.
pub fn decimals_as_text(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    use std::sync::Arc;

    use arrow::datatypes::{DataType, Field};
    let is_decimal =
        |t: &DataType| matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..));
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| is_decimal(f.data_type()))
    {
        return Ok(batch.clone());
    }
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if is_decimal(field.data_type()) {
            fields.push(Field::new(field.name(), DataType::Utf8, true));
            columns.push(arrow::compute::cast(column, &DataType::Utf8)?);
        } else {
            fields.push(field.as_ref().clone());
            columns.push(Arc::clone(column));
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

/// `batch` with its list, map and struct columns as JSON text (CSV has no nested values).
pub fn nested_as_json(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    use std::sync::Arc;

    use arrow::array::Array;
    use arrow::datatypes::{DataType, Field};
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| f.data_type().is_nested())
    {
        return Ok(batch.clone());
    }
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if !field.data_type().is_nested() {
            fields.push(field.as_ref().clone());
            columns.push(Arc::clone(column));
            continue;
        }
        // One JSON line per row, `{"v":…}` (nulls inside a value written out); a null row is an
        // empty field.
        let single = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                "v",
                column.data_type().clone(),
                true,
            )])),
            vec![Arc::clone(column)],
        )?;
        let text = String::from_utf8(json_lines(&single)?)
            .map_err(|e| ArrowError::ExternalError(e.into()))?;
        let values: arrow::array::StringArray = text
            .lines()
            .enumerate()
            .map(|(row, line)| {
                line.strip_prefix("{\"v\":")
                    .and_then(|rest| rest.strip_suffix('}'))
                    .filter(|_| column.is_valid(row))
            })
            .collect();
        if values.len() != batch.num_rows() {
            return Err(ArrowError::ComputeError(format!(
                "column `{}`: {} JSON values for {} rows",
                field.name(),
                values.len(),
                batch.num_rows()
            )));
        }
        fields.push(Field::new(field.name(), DataType::Utf8, true));
        columns.push(Arc::new(values));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, ListBuilder, MapBuilder, StringBuilder};
    use arrow::datatypes::Field;

    use super::*;

    #[test]
    fn csv_writes_lists_and_maps_as_json_text() {
        let mut lists = ListBuilder::new(StringBuilder::new());
        lists.values().append_value("src/a.rs");
        lists.values().append_value("say \"hi\"");
        lists.append(true);
        lists.append(false);
        lists.append(true);
        let mut maps = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        maps.keys().append_value("team");
        maps.values().append_value("payments");
        maps.append(true).unwrap();
        maps.append(false).unwrap();
        maps.keys().append_value("env");
        maps.values().append_null();
        maps.append(true).unwrap();
        let (lists, maps): (ArrayRef, ArrayRef) =
            (Arc::new(lists.finish()), Arc::new(maps.finish()));
        let schema = Schema::new(vec![
            Field::new("n", arrow::datatypes::DataType::Int64, false),
            Field::new("files", lists.data_type().clone(), true),
            Field::new("tags", maps.data_type().clone(), true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![Arc::new(Int64Array::from(vec![1, 2, 3])), lists, maps],
        )
        .unwrap();
        let csv = String::from_utf8(render(&schema, &[batch], Format::Csv).unwrap()).unwrap();
        let expected = [
            "n,files,tags",
            r#"1,"[""src/a.rs"",""say \""hi\""""]","{""team"":""payments""}""#,
            "2,,",
            r#"3,[],"{""env"":null}""#,
        ];
        assert_eq!(csv.lines().collect::<Vec<_>>(), expected, "{csv}");
    }
}
