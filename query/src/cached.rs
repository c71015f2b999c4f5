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
use datafusion::logical_expr::{
    BinaryExpr, Expr, LogicalPlan, Operator, TableProviderFilterPushDown, TableType,
};
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::scalar::ScalarValue;
use tokio::sync::OnceCell;

/// A view whose rows are computed by its plan the first time a query reads it, then kept in
/// memory for the session's life (the engine is opened per command, or reopened after ingests).
///
/// A column known to hold one value in every row (`period` of `dora_daily`, `dora_weekly` and
/// `dora_monthly`) lets a query that asks for another value skip the view without computing it:
/// `SELECT … FROM dora_periods WHERE period = 'month'` computes the monthly rows only.
#[derive(Debug)]
pub struct CachedView {
    plan: LogicalPlan,
    schema: SchemaRef,
    definition: String,
    constant: Option<(String, ScalarValue)>,
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
            constant: None,
            rows: OnceCell::new(),
        }
    }

    /// The same view, knowing that `column` holds `value` in every row.
    pub fn with_constant(mut self, column: &str, value: ScalarValue) -> CachedView {
        self.constant = Some((column.to_owned(), value));
        self
    }

    /// Whether `filter` asks the constant column for another value (`column = literal`, either
    /// way round): then no row can match.
    fn excludes(&self, filter: &Expr) -> bool {
        let Some((column, value)) = &self.constant else {
            return false;
        };
        let Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) = filter
        else {
            return false;
        };
        let asked = match (left.as_ref(), right.as_ref()) {
            (Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c)) => {
                (c, v)
            }
            _ => return false,
        };
        let (c, v) = asked;
        if c.name != *column || v.is_null() {
            return false;
        }
        match v.cast_to(&value.data_type()) {
            Ok(v) => v != *value,
            Err(_) => false,
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

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Seen, not applied: the filters still run above the scan.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if filters.iter().any(|f| self.excludes(f)) {
            let schema = match projection {
                Some(p) => Arc::new(self.schema.project(p)?),
                None => Arc::clone(&self.schema),
            };
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        self.rows(state)
            .await?
            .scan(state, projection, filters, limit)
            .await
    }
}
