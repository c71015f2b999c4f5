//! A derived table's rows in the order of its cluster column, for the write: the order is computed
//! from that one column, and the sorted rows are taken from the computed batches a slice at a
//! time as the write reads them, so that no sorted copy of the whole table is ever in memory (a
//! concatenated copy and a sorted one, beside the batches, made the cost tables' refresh of the
//! large sample organisation peak at 1.09 GB).

use std::ops::Range;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use deltalake::datafusion::catalog::streaming::StreamingTable;
use deltalake::datafusion::datasource::provider_as_source;
use deltalake::datafusion::error::DataFusionError;
use deltalake::datafusion::execution::{SendableRecordBatchStream, TaskContext};
use deltalake::datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use deltalake::datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use deltalake::datafusion::physical_plan::streaming::PartitionStream;

/// Rows per slice handed to the write.
const SLICE_ROWS: usize = 8192;

/// A scan of `batches` sorted by column `index` (nulls last), in one contiguous run of the
/// sorted rows per core when they make several files of `file_bytes` (each core writes its own
/// files, each file still holding a contiguous range of the column), else in one run (an
/// incremental refresh's few services: one file, not a small file per core).
pub(crate) fn sorted_scan(
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    index: usize,
    file_bytes: u64,
) -> Result<LogicalPlan, DataFusionError> {
    let column: Vec<&dyn arrow::array::Array> =
        batches.iter().map(|b| b.column(index).as_ref()).collect();
    let order = if column.is_empty() {
        Vec::new()
    } else {
        let whole = arrow::compute::concat(&column)?;
        let sorted = arrow::compute::sort_to_indices(
            &whole,
            Some(arrow::compute::SortOptions {
                descending: false,
                nulls_first: false,
            }),
            None,
        )?;
        // Row `i` of the concatenation is row `i - starts[b]` of batch `b`.
        let mut starts = Vec::with_capacity(batches.len());
        let mut total = 0;
        for batch in &batches {
            starts.push(total);
            total += batch.num_rows();
        }
        sorted
            .values()
            .iter()
            .map(|&i| {
                let i = i as usize;
                let b = starts.partition_point(|&start| start <= i) - 1;
                (b, i - starts[b])
            })
            .collect()
    };
    let bytes: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
    let cores = if bytes as u64 > 4 * file_bytes {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        1
    };
    let (batches, order) = (Arc::new(batches), Arc::new(order));
    let per_core = order.len().div_ceil(cores).max(1);
    let mut runs: Vec<Arc<dyn PartitionStream>> = (0..order.len())
        .step_by(per_core)
        .map(|start| {
            Arc::new(SortedRun {
                schema: Arc::clone(&schema),
                batches: Arc::clone(&batches),
                order: Arc::clone(&order),
                rows: start..(start + per_core).min(order.len()),
            }) as Arc<dyn PartitionStream>
        })
        .collect();
    if runs.is_empty() {
        runs.push(Arc::new(SortedRun {
            schema: Arc::clone(&schema),
            batches,
            order,
            rows: 0..0,
        }));
    }
    let table = StreamingTable::try_new(schema, runs)?;
    LogicalPlanBuilder::scan("rows", provider_as_source(Arc::new(table)), None)?.build()
}

/// The sorted rows `rows` (positions in `order`), produced a slice at a time.
#[derive(Debug)]
struct SortedRun {
    schema: SchemaRef,
    batches: Arc<Vec<RecordBatch>>,
    /// (batch, row) of each sorted row.
    order: Arc<Vec<(usize, usize)>>,
    rows: Range<usize>,
}

impl PartitionStream for SortedRun {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (batches, order) = (Arc::clone(&self.batches), Arc::clone(&self.order));
        let schema = Arc::clone(&self.schema);
        let end = self.rows.end;
        let slices = self.rows.clone().step_by(SLICE_ROWS).map(move |start| {
            let sources: Vec<&RecordBatch> = batches.iter().collect();
            let slice = &order[start..(start + SLICE_ROWS).min(end)];
            let rows = arrow::compute::interleave_record_batch(&sources, slice)?;
            // In the table's schema (the computed batches may differ in nullability only).
            Ok(RecordBatch::try_new(
                Arc::clone(&schema),
                rows.columns().to_vec(),
            )?)
        });
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            futures::stream::iter(slices),
        ))
    }
}
