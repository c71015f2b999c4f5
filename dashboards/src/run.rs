//! Running a page: every panel's query at once, values bound; a panel whose SQL fails keeps its
//! error for its place on the page, and the others still render.

use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use query::Engine;
use query::reports::BoundQuery;

use crate::selection::Selection;
use crate::spec::{Dashboard, Panel};

/// One panel's rows.
#[derive(Debug, Clone)]
pub struct Rows {
    /// Their columns (known even when no row came back).
    pub schema: Arc<Schema>,
    /// The rows.
    pub batches: Vec<RecordBatch>,
}

impl Rows {
    /// How many rows.
    pub fn len(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Whether none came back.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One panel's query, bound, and what it gave.
#[derive(Debug, Clone)]
pub struct PanelResult {
    /// The SQL and its values, as run (the page's "show SQL").
    pub query: BoundQuery,
    /// The rows, or the query's error message.
    pub outcome: Result<Rows, String>,
}

/// Runs `panel` for `selection`.
pub async fn run_panel(engine: &Engine, panel: &Panel, selection: &Selection) -> PanelResult {
    let query = selection.bind(&panel.sql);
    let outcome = engine.query_bound(&query).await;
    finish(panel, query, outcome)
}

fn finish(
    panel: &Panel,
    query: BoundQuery,
    outcome: Result<(Arc<Schema>, Vec<RecordBatch>), query::QueryError>,
) -> PanelResult {
    let outcome = outcome
        .map(|(schema, batches)| Rows { schema, batches })
        .map_err(|e| e.to_string());
    if let Err(message) = &outcome {
        tracing::warn!(panel = %panel.id, error = %message, "a dashboard panel's query failed");
    }
    PanelResult { query, outcome }
}

/// Runs every panel of `dashboard` at once, each in a task of its own on a clone of the engine's
/// session (polled together in one task, their operators would share one thread); results in
/// panel order.
pub async fn run_page(
    engine: &Engine,
    dashboard: &Dashboard,
    selection: &Selection,
) -> Vec<PanelResult> {
    let tasks: Vec<_> = dashboard
        .panels
        .iter()
        .map(|panel| {
            let ctx = engine.context().clone();
            let query = selection.bind(&panel.sql);
            tokio::spawn(async move {
                let outcome = query::engine::query_bound_on(&ctx, &query).await;
                (query, outcome)
            })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for (panel, task) in dashboard.panels.iter().zip(tasks) {
        results.push(match task.await {
            Ok((query, outcome)) => finish(panel, query, outcome),
            Err(e) => PanelResult {
                query: selection.bind(&panel.sql),
                outcome: Err(format!("the panel's query stopped: {e}")),
            },
        });
    }
    results
}

/// The latest month of the DORA grid that has ended (pages show it by default); `None` on an
/// empty lake.
pub async fn latest_complete_month(engine: &Engine) -> Result<Option<NaiveDate>, String> {
    let sql = format!(
        "SELECT coalesce({}, (SELECT max(period_start) FROM dora_period_grid WHERE period = 'month')) AS month",
        query::reports::LATEST_COMPLETE_MONTH
    );
    let batches = engine.query(&sql).await.map_err(|e| e.to_string())?;
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(None);
    };
    let Some(dates) = batch
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::Date32Array>()
    else {
        return Err(format!(
            "the latest month is a {}, not a DATE",
            batch.column(0).data_type()
        ));
    };
    Ok(if arrow::array::Array::is_null(dates, 0) {
        None
    } else {
        dates.value_as_date(0)
    })
}
