//! The metric views' hand-worked cases: every `sql/tests/*.slt` file runs with the `sqllogictest`
//! crate against the real views over in-memory tables with the lake's columns (every column
//! nullable, so a case names only the columns it needs). A sibling `NAME.toml` is the
//! `doracost.toml` that file runs under (default config otherwise). The per-row views are computed
//! once per session on first read, so a file inserts all its rows before its first query.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use model::{Config, Table};
use sqllogictest::{DBOutput, DefaultColumnType};

use crate::Engine;
use crate::cached::all_nullable;

struct Db {
    ctx: SessionContext,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct DbError(String);

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for Db {
    type Error = DbError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DbError> {
        let frame = self
            .ctx
            .sql(sql)
            .await
            .map_err(|e| DbError(e.to_string()))?;
        let is_query = {
            let upper = sql.trim_start().to_ascii_uppercase();
            upper.starts_with("SELECT") || upper.starts_with("WITH") || upper.starts_with("VALUES")
        };
        let schema = frame.schema().as_arrow().clone();
        let batches = frame.collect().await.map_err(|e| DbError(e.to_string()))?;
        if !is_query {
            return Ok(DBOutput::StatementComplete(0));
        }
        let types = schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::UInt8
                | DataType::UInt16
                | DataType::UInt32
                | DataType::UInt64 => DefaultColumnType::Integer,
                DataType::Float32 | DataType::Float64 | DataType::Decimal128(_, _) => {
                    DefaultColumnType::FloatingPoint
                }
                _ => DefaultColumnType::Text,
            })
            .collect();
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for batch in &batches {
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| DbError(e.to_string()))?;
            for row in 0..batch.num_rows() {
                rows.push(
                    formatters
                        .iter()
                        .map(|f| {
                            let text = f.value(row).to_string();
                            if text.is_empty() {
                                "(empty)".into()
                            } else {
                                text
                            }
                        })
                        .collect(),
                );
            }
        }
        Ok(DBOutput::Rows { types, rows })
    }

    fn engine_name(&self) -> &str {
        "doracost"
    }

    async fn shutdown(&mut self) {}
}

async fn db_for(slt: &Path) -> Db {
    let toml = slt.with_extension("toml");
    let config = if toml.exists() {
        Config::load(&toml).unwrap_or_else(|e| panic!("{}: {e}", toml.display()))
    } else {
        Config::default()
    };
    let ctx = Engine::new_context();
    for table in Table::ALL {
        let mem = MemTable::try_new(all_nullable(&table.schema()), vec![vec![]]).unwrap();
        ctx.register_table(table.name(), Arc::new(mem)).unwrap();
    }
    let engine = Engine::with_tables(ctx, &config)
        .await
        .unwrap_or_else(|e| panic!("views: {e}"));
    Db {
        ctx: engine.context().clone(),
    }
}

fn slt_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/tests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_slt_case_holds() {
    let files = slt_files();
    assert!(!files.is_empty(), "no .slt files under sql/tests");
    let mut failures = Vec::new();
    for file in files {
        let db = db_for(&file).await;
        let mut runner = sqllogictest::Runner::new(move || {
            let ctx = db.ctx.clone();
            async move { Ok(Db { ctx }) }
        });
        if let Err(e) = runner.run_file_async(&file).await {
            failures.push(format!("{}:\n{e}", file.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
