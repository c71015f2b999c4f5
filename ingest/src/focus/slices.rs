//! Canonical `costs` rows, gathered per (billing account, invoice month) slice (DESIGN §3: a
//! re-ingested bill replaces its slice whole, so `cost_id` is the slice plus the row's ordinal in it).
//!
//! Both readers (CSV and Parquet) turn a line item into a [`CostRow`] of borrowed, already typed
//! values and hand it here; everything about ids, slices and Arrow builders lives in this module.

use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Decimal128Builder, Float64Builder, MapBuilder, MapFieldNames,
    StringArray, StringBuilder, TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Datelike};
use model::schema::{self, MONEY_PRECISION, MONEY_SCALE};

use super::{CostSlice, tags};

/// Rows per record batch: large enough for vectorised queries, small enough to stay in cache.
pub(crate) const BATCH_ROWS: usize = 64 * 1024;

/// Rows a new slice's builders are sized for; most slices of a bill are small, the few large ones
/// grow to [`BATCH_ROWS`] after their first batch.
const FIRST_BATCH_CAPACITY: usize = 1024;

/// A line item's tags as its file holds them.
pub(crate) enum TagsInput<'a> {
    /// No tags.
    Null,
    /// A JSON object (CSV, or a Parquet string column).
    Json(&'a str),
    /// Entries `range` of a Parquet map column, keys and values already as strings.
    Entries {
        keys: &'a StringArray,
        values: &'a StringArray,
        range: Range<usize>,
    },
    /// (key, value) pairs gathered from one column per tag (legacy CUR `resourceTags/…`).
    Pairs(&'a [(&'a str, &'a str)]),
}

/// One line item, typed, borrowing its text from the reader's buffers.
pub(crate) struct CostRow<'a> {
    pub provider: &'a str,
    pub billing_account: &'a str,
    /// `BillingPeriodStart`, microseconds UTC: its month is the invoice month.
    pub billing_period_start: i64,
    pub sub_account: Option<&'a str>,
    pub charge_period_start: i64,
    pub charge_period_end: i64,
    pub charge_category: &'a str,
    pub charge_class: Option<&'a str>,
    pub cloud_service: Option<&'a str>,
    pub service_category: Option<&'a str>,
    pub region: Option<&'a str>,
    pub resource_id: Option<&'a str>,
    pub resource_name: Option<&'a str>,
    pub tags: TagsInput<'a>,
    pub billed_cost: i128,
    pub effective_cost: i128,
    pub list_cost: Option<i128>,
    pub currency: &'a str,
    pub usage_quantity: Option<f64>,
    pub usage_unit: Option<&'a str>,
}

/// Why a row could not be added.
#[derive(Debug)]
pub(crate) enum AppendError {
    /// A value is malformed: the FOCUS column and what was wrong.
    Value {
        column: &'static str,
        message: String,
    },
    /// Arrow refused a batch (a bug, or data no schema can hold).
    Arrow(ArrowError),
    /// The sink of a streamed read refused a chunk (the lake write stopped).
    Sink(crate::IngestError),
}

/// What a streamed read hands on each time it holds enough rows: the slices first seen since
/// the previous chunk (a writer replaces them before it appends rows of them) and rows of any
/// slice seen so far, in the schema of `model::schema::costs()`.
#[derive(Debug)]
pub struct CostChunk {
    /// Slices that begin in this chunk (or before it, with no rows handed on yet).
    pub slices: Vec<model::CostSliceKey>,
    /// The rows.
    pub batches: Vec<RecordBatch>,
}

/// Where a streamed bill read hands its chunks.
pub type CostSink = Box<dyn FnMut(CostChunk) -> Result<(), crate::IngestError> + Send>;

/// The streaming side of [`Slices`]: finished batches wait here until a chunk is full.
struct Stream {
    chunk_rows: usize,
    sink: CostSink,
    ready: Vec<RecordBatch>,
    /// Rows appended since the last chunk went out.
    held_rows: usize,
    /// How many of the slices (in order of first appearance) went out with a chunk already.
    announced: usize,
}

impl Stream {
    /// Hands on the ready rows and the slices not announced yet.
    fn emit(&mut self, bill: &BillSource, slices: &[SliceBuilder]) -> Result<(), AppendError> {
        let new = slices[self.announced..]
            .iter()
            .map(|s| model::CostSliceKey {
                source: bill.name.to_owned(),
                billing_account: s.billing_account.clone(),
                invoice_month: s.invoice_month.clone(),
            })
            .collect();
        self.announced = slices.len();
        self.held_rows = 0;
        let chunk = CostChunk {
            slices: new,
            batches: std::mem::take(&mut self.ready),
        };
        (self.sink)(chunk).map_err(AppendError::Sink)
    }
}

impl AppendError {
    /// A malformed value in `column`.
    pub fn value(column: &'static str, message: impl Into<String>) -> Self {
        AppendError::Value {
            column,
            message: message.into(),
        }
    }
}

/// What differs between the bill sources that share this module (FOCUS, CUR).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BillSource {
    /// The `source` of every row, and the first part of every `cost_id`.
    pub name: &'static str,
    /// The column whose month is the invoice month (named in errors).
    pub billing_period_column: &'static str,
    /// The tags column (named in errors).
    pub tags_column: &'static str,
    /// Maps a tag key as the file writes it to the key stored (FOCUS: unchanged).
    pub tag_key: fn(&str) -> &str,
}

/// Every slice seen so far, in order of first appearance.
pub(crate) struct Slices {
    bill: BillSource,
    ingested_at: i64,
    slices: Vec<SliceBuilder>,
    /// The slice the previous row went to: bills come sorted by account and month, mostly.
    last: Option<usize>,
    /// The last `BillingPeriodStart` seen and its (year, month), to skip the calendar arithmetic.
    last_period: Option<(i64, (i32, u32))>,
    /// Set for a streamed read ([`Slices::streaming`]).
    stream: Option<Stream>,
    /// Rows per batch: [`BATCH_ROWS`], or a streamed read's chunk when that is smaller.
    batch_rows: usize,
}

impl Slices {
    /// No slices yet; every row will carry `bill.name` and `ingested_at` (microseconds UTC).
    pub fn new(bill: BillSource, ingested_at: i64) -> Self {
        Slices {
            bill,
            ingested_at,
            slices: Vec::new(),
            last: None,
            last_period: None,
            stream: None,
            batch_rows: BATCH_ROWS,
        }
    }

    /// Slices that hand their rows to `sink` in chunks of about `chunk_rows` rows as they are
    /// read, rather than keeping them: [`Slices::finish_stream`] hands on the rest.
    pub fn streaming(
        bill: BillSource,
        ingested_at: i64,
        chunk_rows: usize,
        sink: CostSink,
    ) -> Self {
        Slices {
            stream: Some(Stream {
                chunk_rows,
                sink,
                ready: Vec::new(),
                held_rows: 0,
                announced: 0,
            }),
            batch_rows: chunk_rows.clamp(1, BATCH_ROWS),
            ..Slices::new(bill, ingested_at)
        }
    }

    /// Ends a streamed read: every row not handed on yet goes in a last chunk.
    pub fn finish_stream(mut self) -> Result<(), AppendError> {
        let Some(mut stream) = self.stream.take() else {
            return Ok(());
        };
        for slice in &mut self.slices {
            if slice.rows.len > 0 {
                slice.flush(0).map_err(AppendError::Arrow)?;
            }
            stream.ready.append(&mut slice.batches);
        }
        if stream.ready.is_empty() && stream.announced == self.slices.len() {
            return Ok(());
        }
        stream.emit(&self.bill, &self.slices)
    }

    /// Adds `row` at the end of its slice.
    pub fn append(&mut self, row: &CostRow<'_>) -> Result<(), AppendError> {
        let month = self.invoice_month(row.billing_period_start)?;
        let index = match self.last {
            Some(i) if self.slices[i].is(row.billing_account, month) => i,
            _ => match self
                .slices
                .iter()
                .position(|s| s.is(row.billing_account, month))
            {
                Some(i) => i,
                None => {
                    self.slices.push(SliceBuilder::new(
                        self.bill,
                        row.billing_account,
                        month,
                        self.ingested_at,
                    ));
                    self.slices.len() - 1
                }
            },
        };
        self.last = Some(index);
        let slice = &mut self.slices[index];
        slice.rows.append(row, &self.bill, &mut slice.cost_id)?;
        if slice.rows.len == self.batch_rows {
            slice.flush(self.batch_rows).map_err(AppendError::Arrow)?;
        }
        if let Some(stream) = &mut self.stream {
            stream.held_rows += 1;
            if stream.held_rows >= stream.chunk_rows {
                // Every slice's rows so far, the partly built batches too: however many slices
                // a bill has, no more than a chunk of rows is held.
                for slice in &mut self.slices {
                    if slice.rows.len > 0 {
                        slice
                            .flush(self.batch_rows.min(FIRST_BATCH_CAPACITY))
                            .map_err(AppendError::Arrow)?;
                    }
                    stream.ready.append(&mut slice.batches);
                }
                stream.emit(&self.bill, &self.slices)?;
            }
        }
        Ok(())
    }

    fn invoice_month(&mut self, billing_period_start: i64) -> Result<(i32, u32), AppendError> {
        if let Some((seen, month)) = self.last_period
            && seen == billing_period_start
        {
            return Ok(month);
        }
        let at = DateTime::from_timestamp_micros(billing_period_start)
            .filter(|t| (0..=9999).contains(&t.year()))
            .ok_or_else(|| {
                AppendError::value(self.bill.billing_period_column, "timestamp out of range")
            })?;
        let month = (at.year(), at.month());
        self.last_period = Some((billing_period_start, month));
        Ok(month)
    }

    /// The slices, sorted by (billing account, invoice month).
    pub fn finish(self) -> Result<Vec<CostSlice>, ArrowError> {
        let mut out = Vec::with_capacity(self.slices.len());
        for mut slice in self.slices {
            if slice.rows.len > 0 {
                slice.flush(0)?;
            }
            out.push(CostSlice {
                source: self.bill.name.to_owned(),
                billing_account: slice.billing_account,
                invoice_month: slice.invoice_month,
                batches: slice.batches,
            });
        }
        out.sort_by(|a, b| {
            (&a.billing_account, &a.invoice_month).cmp(&(&b.billing_account, &b.invoice_month))
        });
        Ok(out)
    }
}

/// One slice: its finished batches and the batch being built.
struct SliceBuilder {
    bill: BillSource,
    billing_account: String,
    month: (i32, u32),
    invoice_month: String,
    ingested_at: i64,
    /// `{source}:{account}:{month}:` followed by the ordinal of the row being added.
    cost_id: CostId,
    rows: RowBuilders,
    batches: Vec<RecordBatch>,
}

/// Formats `cost_id`s into one reused buffer.
struct CostId {
    prefix_len: usize,
    /// The ordinal the next row gets: its 0-based position in the slice.
    next_ordinal: u64,
    text: String,
}

impl CostId {
    /// The id of the next row; each call moves on by one.
    fn next(&mut self) -> &str {
        self.text.truncate(self.prefix_len);
        // Writing an integer into a String cannot fail.
        let _ = write!(self.text, "{}", self.next_ordinal);
        self.next_ordinal += 1;
        &self.text
    }
}

impl SliceBuilder {
    fn new(bill: BillSource, billing_account: &str, month: (i32, u32), ingested_at: i64) -> Self {
        let invoice_month = format!("{:04}-{:02}", month.0, month.1);
        let text = format!("{}:{billing_account}:{invoice_month}:", bill.name);
        SliceBuilder {
            bill,
            billing_account: billing_account.to_owned(),
            month,
            invoice_month,
            ingested_at,
            cost_id: CostId {
                prefix_len: text.len(),
                next_ordinal: 0,
                text,
            },
            rows: RowBuilders::with_capacity(FIRST_BATCH_CAPACITY),
            batches: Vec::new(),
        }
    }

    fn is(&self, billing_account: &str, month: (i32, u32)) -> bool {
        self.month == month && self.billing_account == billing_account
    }

    /// Finishes the batch being built; the next one is sized for `next_capacity` rows.
    fn flush(&mut self, next_capacity: usize) -> Result<(), ArrowError> {
        let rows = std::mem::replace(&mut self.rows, RowBuilders::with_capacity(next_capacity));
        let batch = rows.finish(
            self.bill.name,
            &self.billing_account,
            &self.invoice_month,
            self.ingested_at,
        )?;
        self.batches.push(batch);
        Ok(())
    }
}

/// Arrow builders for the columns that vary by row; the per-slice constants (`source`,
/// `ingested_at`, `billing_account`, `invoice_month`, `is_estimated`) are filled in at the end.
struct RowBuilders {
    len: usize,
    cost_id: StringBuilder,
    provider: StringBuilder,
    sub_account: StringBuilder,
    charge_period_start: TimestampMicrosecondBuilder,
    charge_period_end: TimestampMicrosecondBuilder,
    charge_category: StringBuilder,
    charge_class: StringBuilder,
    cloud_service: StringBuilder,
    service_category: StringBuilder,
    region: StringBuilder,
    resource_id: StringBuilder,
    resource_name: StringBuilder,
    tags: MapBuilder<StringBuilder, StringBuilder>,
    billed_cost: Decimal128Builder,
    effective_cost: Decimal128Builder,
    list_cost: Decimal128Builder,
    currency: StringBuilder,
    usage_quantity: Float64Builder,
    usage_unit: StringBuilder,
}

impl RowBuilders {
    fn with_capacity(rows: usize) -> Self {
        // Byte hints from the FOCUS sample's typical widths; builders grow past them as needed.
        let text = |bytes_per_row: usize| StringBuilder::with_capacity(rows, rows * bytes_per_row);
        let timestamp = || {
            TimestampMicrosecondBuilder::with_capacity(rows)
                .with_data_type(schema::timestamp_type())
        };
        let money = || {
            Decimal128Builder::with_capacity(rows).with_data_type(
                arrow::datatypes::DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE),
            )
        };
        let names = MapFieldNames {
            entry: "key_value".to_owned(),
            key: "key".to_owned(),
            value: "value".to_owned(),
        };
        RowBuilders {
            len: 0,
            cost_id: text(48),
            provider: text(8),
            sub_account: text(16),
            charge_period_start: timestamp(),
            charge_period_end: timestamp(),
            charge_category: text(8),
            charge_class: text(0),
            cloud_service: text(24),
            service_category: text(12),
            region: text(12),
            resource_id: text(64),
            resource_name: text(16),
            tags: MapBuilder::with_capacity(
                Some(names),
                StringBuilder::with_capacity(rows * 2, rows * 24),
                StringBuilder::with_capacity(rows * 2, rows * 24),
                rows,
            ),
            billed_cost: money(),
            effective_cost: money(),
            list_cost: money(),
            currency: text(3),
            usage_quantity: Float64Builder::with_capacity(rows),
            usage_unit: text(8),
        }
    }

    fn append(
        &mut self,
        row: &CostRow<'_>,
        bill: &BillSource,
        cost_id: &mut CostId,
    ) -> Result<(), AppendError> {
        // A failed row aborts the whole read (the caller returns the error), so a row whose tags
        // were half appended is never finished into a batch.
        match &row.tags {
            TagsInput::Null => self.tags.append(false),
            TagsInput::Json(text) => {
                let (keys, values) = self.tags.entries();
                tags::append_json_object(text, bill.tag_key, keys, values)
                    .map_err(|m| AppendError::value(bill.tags_column, m))?;
                self.tags.append(true)
            }
            TagsInput::Entries {
                keys,
                values,
                range,
            } => {
                let (key_builder, value_builder) = self.tags.entries();
                for i in range.clone() {
                    if keys.is_null(i) {
                        return Err(AppendError::value(bill.tags_column, "a tag key is null"));
                    }
                    key_builder.append_value((bill.tag_key)(keys.value(i)));
                    value_builder.append_option(values.is_valid(i).then(|| values.value(i)));
                }
                self.tags.append(true)
            }
            TagsInput::Pairs(pairs) => {
                let (key_builder, value_builder) = self.tags.entries();
                for (key, value) in pairs.iter() {
                    key_builder.append_value((bill.tag_key)(key));
                    value_builder.append_value(value);
                }
                self.tags.append(true)
            }
        }
        .map_err(AppendError::Arrow)?;
        self.cost_id.append_value(cost_id.next());
        self.provider.append_value(row.provider);
        self.sub_account.append_option(row.sub_account);
        self.charge_period_start
            .append_value(row.charge_period_start);
        self.charge_period_end.append_value(row.charge_period_end);
        self.charge_category.append_value(row.charge_category);
        self.charge_class.append_option(row.charge_class);
        self.cloud_service.append_option(row.cloud_service);
        self.service_category.append_option(row.service_category);
        self.region.append_option(row.region);
        self.resource_id.append_option(row.resource_id);
        self.resource_name.append_option(row.resource_name);
        self.billed_cost.append_value(row.billed_cost);
        self.effective_cost.append_value(row.effective_cost);
        self.list_cost.append_option(row.list_cost);
        self.currency.append_value(row.currency);
        self.usage_quantity.append_option(row.usage_quantity);
        self.usage_unit.append_option(row.usage_unit);
        self.len += 1;
        Ok(())
    }

    fn finish(
        mut self,
        source: &str,
        billing_account: &str,
        invoice_month: &str,
        ingested_at: i64,
    ) -> Result<RecordBatch, ArrowError> {
        let n = self.len;
        let constant = |text: &str| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(text, n)))
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.cost_id.finish()),
            constant(source),
            Arc::new(
                TimestampMicrosecondArray::from(vec![ingested_at; n])
                    .with_data_type(schema::timestamp_type()),
            ),
            Arc::new(self.provider.finish()),
            constant(billing_account),
            Arc::new(self.sub_account.finish()),
            Arc::new(self.charge_period_start.finish()),
            Arc::new(self.charge_period_end.finish()),
            Arc::new(self.charge_category.finish()),
            Arc::new(self.charge_class.finish()),
            Arc::new(self.cloud_service.finish()),
            Arc::new(self.service_category.finish()),
            Arc::new(self.region.finish()),
            Arc::new(self.resource_id.finish()),
            Arc::new(self.resource_name.finish()),
            Arc::new(self.tags.finish()),
            Arc::new(self.billed_cost.finish()),
            Arc::new(self.effective_cost.finish()),
            Arc::new(self.list_cost.finish()),
            Arc::new(self.currency.finish()),
            Arc::new(self.usage_quantity.finish()),
            Arc::new(self.usage_unit.finish()),
            constant(invoice_month),
            Arc::new(BooleanArray::from(vec![false; n])),
        ];
        RecordBatch::try_new(schema::costs(), columns)
    }
}
