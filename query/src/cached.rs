//! A view computed once per session, on first use: the per-row DORA views (`dora_production`,
//! `dora_deployments`, …) are read many times by the views above them, and DataFusion inlines a
//! plain view at every reference, which would compute the same joins a dozen times per query.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, LogicalPlan, TableType};
use datafusion::physical_plan::{ExecutionPlan, collect};
use tokio::sync::OnceCell;

/// A view whose rows are computed by its plan the first time a query reads it, then kept in
/// memory for the session's life (the engine is opened per command, or reopened after ingests).
#[derive(Debug)]
pub struct CachedView {
    plan: LogicalPlan,
    schema: SchemaRef,
    definition: String,
    rows: OnceCell<Arc<MemTable>>,
}

impl CachedView {
    /// A cached view of `plan`, created by the SQL `definition`.
    /// `plan` should be optimized (type-coerced): its schema is the view's, with every column
    /// nullable (DataFusion's logical and physical nullability can disagree after rewrites).
    pub fn new(plan: LogicalPlan, definition: String) -> CachedView {
        let schema = all_nullable(plan.schema().inner());
        CachedView {
            plan,
            schema,
            definition,
            rows: OnceCell::new(),
        }
    }

    /// The view's rows (computed now if not yet), in its schema.
    pub async fn batches(&self, state: &dyn Session) -> Result<Vec<RecordBatch>> {
        let table = self.rows(state).await?;
        let mut all = Vec::new();
        for partition in &table.batches {
            all.extend(partition.read().await.iter().cloned());
        }
        Ok(all)
    }

    async fn rows(&self, state: &dyn Session) -> Result<Arc<MemTable>> {
        let table = self
            .rows
            .get_or_try_init(|| async {
                let physical = state.create_physical_plan(&self.plan).await?;
                let batches = collect(physical, state.task_ctx()).await?;
                let schema = Arc::clone(&self.schema);
                // Spread over the session's partitions, so readers scan in parallel.
                let partitions = state.config().target_partitions().max(1);
                let mut parts = vec![Vec::new(); partitions];
                for (i, batch) in batches.into_iter().enumerate() {
                    let batch =
                        RecordBatch::try_new(Arc::clone(&schema), batch.columns().to_vec())?;
                    parts[i % partitions].push(batch);
                }
                Ok::<_, datafusion::error::DataFusionError>(Arc::new(MemTable::try_new(
                    schema, parts,
                )?))
            })
            .await?;
        Ok(Arc::clone(table))
    }
}

/// `schema` with every column nullable.
pub fn all_nullable(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<Field>>(),
    ))
}

#[async_trait]
impl TableProvider for CachedView {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn get_table_definition(&self) -> Option<&str> {
        Some(&self.definition)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.rows(state)
            .await?
            .scan(state, projection, filters, limit)
            .await
    }
}
