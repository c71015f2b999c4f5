//! The README's reference of every view and column, generated from `sql/dora.sql` and
//! `sql/cost.sql` so that it cannot drift from them: a view's meaning is the comment right above
//! its `CREATE VIEW`, its columns are those the engine plans for it, and each column's meaning is
//! a bullet of that comment's `Columns:` block:
//!
//! ```sql
//! -- What the view is (Markdown-ish prose, `- ` lines are list items).
//! -- Columns (the rest as in `other_view`):
//! -- - day, week, month: calendar keys of …, which may go on
//! --   on the next line.
//! -- @persisted
//! CREATE VIEW …
//! ```
//!
//! A view marked `-- @internal` (a step of another view, not meant for analysts) is listed with
//! its column names only. Any other view must give every one of its columns a meaning, and may
//! name only columns it has: [`views_markdown`] says which are missing or stray.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::DataType;
use model::{Config, Table};

use crate::config_tables::{COST_SQL, DORA_SQL};
use crate::engine::Engine;

/// The line before the generated section in README.md.
pub const BEGIN_MARKER: &str = "<!-- views:begin -->";
/// The line after it.
pub const END_MARKER: &str = "<!-- views:end -->";

/// A view's comment that does not say what the reference needs, or an engine that did not open.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The comments of a view are incomplete or name columns it does not have.
    #[error("{file}, view `{view}`: {message}")]
    View {
        /// `dora.sql` or `cost.sql`.
        file: &'static str,
        /// The view.
        view: String,
        /// What is wrong, and what to write.
        message: String,
    },
    /// The README has no place for the section.
    #[error("README.md: {0}")]
    Readme(String),
    /// The engine the column names come from did not open.
    #[error(transparent)]
    Query(Box<crate::QueryError>),
    /// A view's schema could not be read.
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
}

impl From<crate::QueryError> for CatalogError {
    fn from(error: crate::QueryError) -> Self {
        CatalogError::Query(Box::new(error))
    }
}

/// One view (or, for the per-period template, its three views) as its comment documents it.
#[derive(Debug, Clone)]
struct ViewDoc {
    file: &'static str,
    /// The views the statement creates (three for `dora_{{periodly}}`).
    names: Vec<String>,
    /// The comment's prose, one entry per comment line (empty: a paragraph break).
    prose: Vec<String>,
    internal: bool,
    /// `(column names, meaning)` per bullet of the `Columns:` block.
    columns: Vec<(Vec<String>, String)>,
    /// Views whose column meanings cover the columns this one does not describe itself.
    fallbacks: Vec<String>,
}

/// The documented views of one SQL file, in file order.
fn parse(file: &'static str, text: &str) -> Result<Vec<ViewDoc>, CatalogError> {
    let mut docs = Vec::new();
    for chunk in text.split("\n;") {
        let lines: Vec<&str> = chunk.lines().collect();
        let Some(create) = lines.iter().position(|l| l.starts_with("CREATE VIEW ")) else {
            continue;
        };
        let name = lines[create]["CREATE VIEW ".len()..]
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        let names = if name.contains("{{periodly}}") {
            ["daily", "weekly", "monthly"]
                .iter()
                .map(|p| name.replace("{{periodly}}", p))
                .collect()
        } else {
            vec![name.clone()]
        };
        // The comment block right above the statement (a blank line ends it).
        let start = lines[..create]
            .iter()
            .rposition(|l| !l.trim_start().starts_with("--"))
            .map_or(0, |i| i + 1);
        let comment: Vec<&str> = lines[start..create]
            .iter()
            .map(|l| {
                let text = l.trim_start().trim_start_matches("--");
                text.strip_prefix(' ').unwrap_or(text).trim_end()
            })
            .collect();
        let mut doc = ViewDoc {
            file,
            names,
            prose: Vec::new(),
            internal: comment.iter().any(|l| l.trim() == "@internal"),
            columns: Vec::new(),
            fallbacks: Vec::new(),
        };
        let mut in_columns = false;
        for line in comment {
            if line.starts_with('@') {
                continue;
            }
            if !in_columns && line.starts_with("Columns") && line.ends_with(':') {
                in_columns = true;
                doc.fallbacks = backticked(line);
                continue;
            }
            if !in_columns {
                doc.prose.push(line.to_owned());
            } else if let Some(bullet) = line.strip_prefix("- ") {
                let (names, meaning) =
                    bullet.split_once(": ").ok_or_else(|| CatalogError::View {
                        file,
                        view: name.clone(),
                        message: format!(
                            "the Columns bullet `- {bullet}` has no `: `; write `- column: meaning`"
                        ),
                    })?;
                let names = names
                    .split(',')
                    .map(|n| n.trim().trim_matches('`').trim_matches('"').to_owned())
                    .collect();
                doc.columns.push((names, meaning.trim().to_owned()));
            } else if let Some((_, meaning)) = doc.columns.last_mut() {
                meaning.push(' ');
                meaning.push_str(line.trim());
            }
        }
        while doc.prose.last().is_some_and(|l| l.is_empty()) {
            doc.prose.pop();
        }
        docs.push(doc);
    }
    Ok(docs)
}

/// The names written between backticks in `text`.
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The Markdown section README.md holds between [`BEGIN_MARKER`] and [`END_MARKER`]: every view
/// of `dora.sql` and `cost.sql` with its meaning and its columns (name, type, meaning), the
/// internal ones listed apart. An error when a view's comment leaves a column without meaning
/// or names one the view does not have.
pub async fn views_markdown() -> Result<String, CatalogError> {
    let mut docs = parse("dora.sql", DORA_SQL)?;
    docs.extend(parse("cost.sql", COST_SQL)?);
    // Column names and types as the engine plans the views (over empty tables and the default
    // config: neither changes a view's columns).
    let ctx = Engine::new_context();
    for table in Table::ALL {
        let empty = datafusion::datasource::MemTable::try_new(table.schema(), vec![Vec::new()])?;
        ctx.register_table(table.name(), Arc::new(empty))?;
    }
    let engine = Engine::with_tables(ctx, &Config::default()).await?;
    let mut schemas: BTreeMap<String, Vec<(String, DataType)>> = BTreeMap::new();
    for doc in &docs {
        for name in &doc.names {
            let frame = engine.context().table(name.as_str()).await?;
            let fields = frame
                .schema()
                .fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().clone()))
                .collect();
            schemas.insert(name.clone(), fields);
        }
    }
    let meanings: BTreeMap<String, BTreeMap<String, String>> = docs
        .iter()
        .flat_map(|doc| {
            let own: BTreeMap<String, String> = doc
                .columns
                .iter()
                .flat_map(|(names, meaning)| names.iter().map(|n| (n.clone(), meaning.clone())))
                .collect();
            doc.names.iter().map(move |n| (n.clone(), own.clone()))
        })
        .collect();

    let mut out = String::new();
    out.push_str(BEGIN_MARKER);
    out.push('\n');
    out.push_str(
        "<!-- Generated from the comments of query/sql/dora.sql and query/sql/cost.sql \
         (query/src/catalog_doc.rs); edit those, then run \
         `DORACOST_BLESS=1 cargo test --workspace --lib -- catalog_doc`. -->\n",
    );
    for (file, title) in [("dora.sql", "DORA views"), ("cost.sql", "Cost views")] {
        out.push_str(&format!(
            "\n### {title} ([`query/sql/{file}`](query/sql/{file}))\n"
        ));
        let mut internal = Vec::new();
        for doc in docs.iter().filter(|d| d.file == file) {
            let first = &doc.names[0];
            let fields = &schemas[first];
            if doc.internal {
                internal.push((doc, fields));
                continue;
            }
            if let Some(unknown) = doc.fallbacks.iter().find(|v| !meanings.contains_key(*v)) {
                return Err(view_error(
                    doc,
                    format!(
                        "its Columns line refers to `{unknown}`, which is no view of dora.sql or cost.sql"
                    ),
                ));
            }
            for other in &doc.names[1..] {
                if schemas[other] != *fields {
                    return Err(view_error(
                        doc,
                        "its per-period views differ in columns".into(),
                    ));
                }
            }
            let mut rows = Vec::new();
            let mut missing = Vec::new();
            for (column, data_type) in fields {
                let meaning = std::iter::once(first)
                    .chain(&doc.fallbacks)
                    .find_map(|view| meanings.get(view)?.get(column));
                match meaning {
                    Some(meaning) => rows.push((column, data_type, meaning)),
                    None => missing.push(format!("`{column}`")),
                }
            }
            if !missing.is_empty() {
                return Err(view_error(
                    doc,
                    format!(
                        "no meaning for column(s) {}: add `-- - column: meaning` to the Columns block of its comment",
                        missing.join(", ")
                    ),
                ));
            }
            let stray: Vec<String> = doc
                .columns
                .iter()
                .flat_map(|(names, _)| names)
                .filter(|n| !fields.iter().any(|(f, _)| f == *n))
                .map(|n| format!("`{n}`"))
                .collect();
            if !stray.is_empty() {
                return Err(view_error(
                    doc,
                    format!(
                        "its comment describes column(s) {} that the view does not have",
                        stray.join(", ")
                    ),
                ));
            }
            let heading: Vec<String> = doc.names.iter().map(|n| format!("`{n}`")).collect();
            out.push_str(&format!("\n#### {}\n\n", heading.join(", ")));
            out.push_str(&prose_markdown(&doc.prose));
            out.push_str("\n| column | type | meaning |\n|---|---|---|\n");
            // Columns one bullet describes together share a row, where the first of them stands.
            let mut groups: Vec<(Vec<String>, Vec<String>, &String)> = Vec::new();
            for (column, data_type, meaning) in rows {
                let type_name = type_name(data_type);
                match groups.iter_mut().find(|(_, _, m)| *m == meaning) {
                    Some((columns, types, _)) => {
                        columns.push(format!("`{column}`"));
                        if !types.contains(&type_name) {
                            types.push(type_name);
                        }
                    }
                    None => groups.push((vec![format!("`{column}`")], vec![type_name], meaning)),
                }
            }
            for (columns, types, meaning) in groups {
                out.push_str(&format!(
                    "| {} | {} | {} |\n",
                    columns.join(", "),
                    types.join(", "),
                    cell(meaning)
                ));
            }
        }
        if !internal.is_empty() {
            out.push_str(
                "\n#### Internal views\n\nSteps of the views above, queryable but not meant as \
                 answers; their comments in the SQL say more.\n\n| view | what it is | columns |\n|---|---|---|\n",
            );
            for (doc, fields) in internal {
                let columns: Vec<String> = fields.iter().map(|(f, _)| format!("`{f}`")).collect();
                out.push_str(&format!(
                    "| `{}` | {} | {} |\n",
                    doc.names[0],
                    cell(&first_sentence(&doc.prose)),
                    columns.join(", ")
                ));
            }
        }
    }
    out.push_str(END_MARKER);
    out.push('\n');
    Ok(out)
}

fn view_error(doc: &ViewDoc, message: String) -> CatalogError {
    CatalogError::View {
        file: doc.file,
        view: doc.names.join("`, `"),
        message,
    }
}

/// The comment's prose as Markdown: lines joined into paragraphs, `- ` lines as list items (an
/// indented line goes on with the item, another ends the list).
fn prose_markdown(lines: &[String]) -> String {
    let mut out = String::new();
    let mut in_list = false;
    for line in lines {
        if line.is_empty() {
            out.push_str("\n\n");
            in_list = false;
        } else if let Some(item) = line.strip_prefix("- ") {
            out.push_str(if in_list { "\n" } else { "\n\n" });
            out.push_str("- ");
            out.push_str(item);
            in_list = true;
        } else if in_list && line.starts_with(' ') {
            out.push(' ');
            out.push_str(line.trim());
        } else if line.starts_with('(') && line.chars().nth(2) == Some(')') {
            // `(a)`, `(b)` … enumerate cases: one per line.
            out.push_str("<br>\n");
            out.push_str(line);
        } else {
            if in_list {
                out.push_str("\n\n");
                in_list = false;
            } else if !out.is_empty() && !out.ends_with("\n\n") {
                out.push(' ');
            }
            out.push_str(line.trim());
        }
    }
    let mut out = out.trim().to_owned();
    out.push('\n');
    out
}

/// The comment's first sentence (up to a full stop followed by a space, or the whole first
/// paragraph).
fn first_sentence(lines: &[String]) -> String {
    let paragraph: Vec<&str> = lines
        .iter()
        .take_while(|l| !l.is_empty())
        .map(|l| l.trim())
        .collect();
    let text = paragraph.join(" ");
    match text.find(". ") {
        Some(end) => text[..=end].to_owned(),
        None => text,
    }
}

/// A table cell: pipes escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// A column's type as an analyst's SQL client names it.
fn type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float64 => "double".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(_, Some(_)) => "timestamp (UTC)".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Decimal128(p, s) => format!("decimal({p}, {s})"),
        DataType::List(field) | DataType::LargeList(field) => {
            format!("list of {}", type_name(field.data_type()))
        }
        DataType::Map(_, _) => "map".into(),
        DataType::Interval(_) => "interval".into(),
        other => other.to_string(),
    }
}

/// `readme` with its generated section replaced by `section` (which carries the markers).
pub fn splice_readme(readme: &str, section: &str) -> Result<String, CatalogError> {
    let (before, rest) = readme.split_once(BEGIN_MARKER).ok_or_else(|| {
        CatalogError::Readme(format!("no `{BEGIN_MARKER}` line to put the views after"))
    })?;
    let (_, after) = rest.split_once(END_MARKER).ok_or_else(|| {
        CatalogError::Readme(format!("no `{END_MARKER}` line after `{BEGIN_MARKER}`"))
    })?;
    let after = after.strip_prefix('\n').unwrap_or(after);
    Ok(format!("{before}{section}{after}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readme_lists_every_view_and_column_as_the_sql_comments_say() {
        let section = views_markdown().await.unwrap_or_else(|e| panic!("{e}"));
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let wanted = splice_readme(&readme, &section).unwrap_or_else(|e| panic!("{e}"));
        if wanted == readme {
            return;
        }
        if std::env::var_os("DORACOST_BLESS").is_some() {
            std::fs::write(&path, wanted).unwrap();
            return;
        }
        let differs = readme
            .lines()
            .zip(wanted.lines())
            .enumerate()
            .find(|(_, (have, want))| have != want)
            .map(|(i, (have, want))| {
                format!(
                    "first difference at line {}:\n  README: {have}\n  SQL:    {want}",
                    i + 1
                )
            })
            .unwrap_or_else(|| "the two differ in length".into());
        panic!(
            "README.md's list of views and columns differs from the comments in query/sql/*.sql; \
             run `DORACOST_BLESS=1 cargo test --workspace --lib -- catalog_doc` (or `doracost docs \
             views --write README.md`) to update it.\n{differs}"
        );
    }

    const SQL: &str = "-- header\n\n-- The view.\n-- Columns (the rest as in `b`):\n-- - x, `y`: two\n--   lines.\n-- @cached\nCREATE VIEW a AS SELECT 1 AS x\n;\n-- Step.\n-- @internal\nCREATE VIEW b AS SELECT 2 AS z\n;\n";

    #[test]
    fn a_views_comment_gives_prose_columns_and_fallbacks() {
        let docs = parse("t.sql", SQL).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].names, ["a"]);
        assert_eq!(docs[0].prose, ["The view."]);
        assert_eq!(
            docs[0].columns,
            [(
                vec!["x".to_owned(), "y".to_owned()],
                "two lines.".to_owned()
            )]
        );
        assert_eq!(docs[0].fallbacks, ["b"]);
        assert!(!docs[0].internal && docs[1].internal);
    }

    #[test]
    fn the_section_replaces_only_what_lies_between_the_markers() {
        let readme = format!("a\n{BEGIN_MARKER}\nold\n{END_MARKER}\nb\n");
        let section = format!("{BEGIN_MARKER}\nnew\n{END_MARKER}\n");
        assert_eq!(
            splice_readme(&readme, &section).unwrap(),
            format!("a\n{BEGIN_MARKER}\nnew\n{END_MARKER}\nb\n")
        );
        assert!(splice_readme("no markers", &section).is_err());
    }
}
