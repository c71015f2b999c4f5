//! The session: registers tables and runs read-only SQL.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{SessionConfig, SessionContext};
use model::{Config, Lake, LakeError, Table};

use crate::config_tables;

/// A query failure.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The lake could not be opened.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// Planning or running the SQL failed (syntax, unknown column, refused statement …).
    #[error(transparent)]
    Sql(#[from] datafusion::error::DataFusionError),
    /// A view of `sql/dora.sql` did not plan (a defect, or a lake table of another schema).
    #[error("the metric views: {0}")]
    Views(String),
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
    /// Registers every lake table (empty ones included), the config tables and the metric views.
    pub async fn open(lake: &Lake, config: &Config) -> Result<Engine, QueryError> {
        let ctx = Engine::new_context();
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
        Engine::with_tables(ctx, config).await
    }

    /// A session configured as the engine's (information schema, UTC session zone), with no
    /// tables yet.
    pub fn new_context() -> SessionContext {
        let session = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("doracost", "public")
            .set_str("datafusion.sql_parser.enable_ident_normalization", "true")
            .set_str("datafusion.execution.time_zone", "+00:00");
        SessionContext::new_with_config(session)
    }

    /// Completes a session whose lake tables (`deployments`, `changes`, …) are registered already,
    /// from Delta or from memory: adds the config tables and creates the metric views.
    pub async fn with_tables(ctx: SessionContext, config: &Config) -> Result<Engine, QueryError> {
        config_tables::register(&ctx, config)?;
        config_tables::register_views(&ctx, config)
            .await
            .map_err(|e| QueryError::Views(e.to_string()))?;
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
