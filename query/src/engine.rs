//! The session: registers tables and runs read-only SQL.

use std::sync::Arc;

use arrow::array::{ListBuilder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{SessionConfig, SessionContext};
use model::{Config, Lake, LakeError, Table};

/// A query failure.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The lake could not be opened.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// Planning or running the SQL failed (syntax, unknown column, refused statement …).
    #[error(transparent)]
    Sql(#[from] datafusion::error::DataFusionError),
    /// Registering a Delta table failed.
    #[error("table `{table}`: {message}")]
    Register {
        /// The table.
        table: &'static str,
        /// What failed.
        message: String,
    },
}

/// A DataFusion session over one lake and one configuration.
pub struct Engine {
    ctx: SessionContext,
}

impl Engine {
    /// Registers every lake table (empty ones included) and the config tables.
    pub async fn open(lake: &Lake, config: &Config) -> Result<Engine, QueryError> {
        let session = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("doracost", "public")
            .set_str("datafusion.sql_parser.enable_ident_normalization", "true")
            .set_str("datafusion.execution.time_zone", "+00:00");
        let ctx = SessionContext::new_with_config(session);
        for table in Table::ALL {
            let handle = lake.open_or_create(table).await?;
            handle
                .update_datafusion_session(&ctx.state())
                .map_err(|e| QueryError::Register {
                    table: table.name(),
                    message: e.to_string(),
                })?;
            let provider = handle
                .table_provider()
                .await
                .map_err(|e| QueryError::Register {
                    table: table.name(),
                    message: e.to_string(),
                })?;
            ctx.register_table(table.name(), provider)?;
        }
        ctx.register_batch("services", services_batch(config)?)?;
        Ok(Engine { ctx })
    }

    /// The underlying DataFusion context (for registering views and UDFs).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Runs one read-only statement: queries, EXPLAIN, SHOW, DESCRIBE. DDL, DML, COPY and
    /// other statements are refused with an error that says so.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let frame = self.ctx.sql_with_options(sql, options).await?;
        Ok(frame.collect().await?)
    }

    /// Runs a query and returns the schema even when no row comes back.
    pub async fn query_with_schema(
        &self,
        sql: &str,
    ) -> Result<(Arc<Schema>, Vec<RecordBatch>), QueryError> {
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let frame = self.ctx.sql_with_options(sql, options).await?;
        let schema = Arc::new(frame.schema().as_arrow().clone());
        Ok((schema, frame.collect().await?))
    }
}

/// `services`: one row per configured service, with its team, repos and path prefixes.
fn services_batch(config: &Config) -> Result<RecordBatch, QueryError> {
    let list = || DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    let schema = Arc::new(Schema::new(vec![
        Field::new("service", DataType::Utf8, false),
        Field::new("team", DataType::Utf8, true),
        Field::new("repos", list(), false),
        Field::new("paths", list(), false),
    ]));
    let mut service = StringBuilder::new();
    let mut team = StringBuilder::new();
    let mut repos = ListBuilder::new(StringBuilder::new());
    let mut paths = ListBuilder::new(StringBuilder::new());
    for s in &config.services {
        service.append_value(&s.name);
        team.append_option(s.team.as_deref());
        for r in &s.repos {
            repos.values().append_value(r);
        }
        repos.append(true);
        for p in &s.paths {
            paths.values().append_value(p);
        }
        paths.append(true);
    }
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(service.finish()),
            Arc::new(team.finish()),
            Arc::new(repos.finish()),
            Arc::new(paths.finish()),
        ],
    )
    .map_err(|e| QueryError::Sql(e.into()))
}
