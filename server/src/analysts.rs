//! Where analysts' queries run (`POST /api/v1/sql` and the PostgreSQL endpoint, DESIGN §5 "SQL
//! safety"), apart from the
//! dashboards and the API: their own memory pool (`[server] sql_memory_limit`, shared by them
//! all), their own threads (`sql_threads`: a heavy query takes those, not the ones that answer
//! `/api/v1/dora`), at most `sql_max_concurrent` at once, each within `sql_timeout_seconds` and
//! `sql_max_rows`.
//!
//! A query's answer is streamed: batches are encoded as they come and handed to the response
//! body through a small channel, so a large answer is never held whole, and a client that stops
//! reading (or hangs up) stops the query, which is dropped with its stream.

use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::Response;
use datafusion::common::ParamValues;
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryPool, TrackConsumersPool};
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use http_body::Frame;
use query::encode::{Encoder, Encoding, Ending};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use crate::error::ServerError;
use crate::state::LiveEngine;

/// The header (and trailer) that says an answer stopped at the row cap.
pub const TRUNCATED: HeaderName = HeaderName::from_static("x-doracost-truncated");
/// The header that gives the row cap up front.
pub const ROW_LIMIT: HeaderName = HeaderName::from_static("x-doracost-row-limit");

/// The limits of analysts' queries (`[server] sql_*`).
#[derive(Debug, Clone)]
pub struct SqlLimits {
    /// One query's time limit, its answer's streaming included.
    pub timeout: Duration,
    /// The memory all analysts' queries share, in bytes.
    pub memory_bytes: usize,
    /// The most rows of one answer.
    pub max_rows: usize,
    /// Queries at once.
    pub max_concurrent: usize,
    /// Threads that run them.
    pub threads: usize,
    /// The largest query text.
    pub max_body_bytes: usize,
}

/// The analysts' pool, permits and threads (one per server).
pub struct Analysts {
    limits: SqlLimits,
    pool: Arc<dyn MemoryPool>,
    permits: Arc<Semaphore>,
    /// The analysts' runtime, or none when its thread could not start (queries then run on the
    /// server's runtime).
    runtime: Option<tokio::runtime::Handle>,
    /// Dropped with `Analysts`: the runtime's thread then ends, and the runtime with it.
    _stop: Option<oneshot::Sender<()>>,
}

impl Analysts {
    /// The pool, permits and threads for `limits`.
    pub fn new(limits: SqlLimits) -> Analysts {
        let pool: Arc<dyn MemoryPool> = Arc::new(TrackConsumersPool::new(
            GreedyMemoryPool::new(limits.memory_bytes),
            NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN),
        ));
        let (runtime, stop) = match start_runtime(limits.threads) {
            Ok((handle, stop)) => (Some(handle), Some(stop)),
            Err(e) => {
                tracing::error!(error = %e, "the analysts' threads cannot start; their queries share the server's");
                (None, None)
            }
        };
        Analysts {
            permits: Arc::new(Semaphore::new(limits.max_concurrent)),
            limits,
            pool,
            runtime,
            _stop: stop,
        }
    }

    /// The limits.
    pub fn limits(&self) -> &SqlLimits {
        &self.limits
    }

    /// A place among the queries running at once; 429 when they are all taken.
    fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ServerError> {
        Arc::clone(&self.permits).try_acquire_owned().map_err(|_| {
            ServerError::Busy(format!(
                "{} analysts' queries are running, the most at once ([server] \
                 sql_max_concurrent): try again in a moment",
                self.limits.max_concurrent
            ))
        })
    }

    /// A session over `live` that allocates from the analysts' pool (the PostgreSQL endpoint
    /// adds its catalog to it, and runs it with [`Analysts::batches`]).
    pub fn session(&self, live: &LiveEngine) -> SessionContext {
        live.engine.analyst_session(Arc::clone(&self.pool))
    }

    /// Runs `work` on the analysts' threads and waits for what it sends `first` (its schema, or
    /// that its answer started) until `deadline`. The deadline is kept here, on the caller's
    /// threads: a query busy inside one operator (a nested-loop join, a recursive step) sees its
    /// own deadline only when it yields, and the client must not wait for that; the abort
    /// stops it at that yield. Returns the first message and the handle that stops the work.
    async fn start<T>(
        &self,
        work: impl std::future::Future<Output = ()> + Send + 'static,
        first: oneshot::Receiver<Result<T, ServerError>>,
        deadline: Instant,
    ) -> Result<(T, tokio::task::AbortHandle), ServerError> {
        let task = match &self.runtime {
            Some(runtime) => runtime.spawn(work),
            None => tokio::spawn(work),
        };
        let abort = task.abort_handle();
        match tokio::time::timeout_at(deadline, first).await {
            Err(_) => {
                abort.abort();
                Err(over_time(&self.limits))
            }
            Ok(Err(_)) => Err(ServerError::Defect(
                "the query stopped before answering (a defect; see the log)".into(),
            )),
            Ok(Ok(first)) => Ok((first?, abort)),
        }
    }

    /// Runs `sql` (checked by [`query::guard::check`] already) on `session` (from
    /// [`Analysts::session`]) with `params` bound to its placeholders, within the same limits
    /// as [`Analysts::answer`]: its batches as they come, at most `sql_max_rows` rows in all.
    /// An error before the first batch is returned here; the stream ends with an error at the
    /// deadline, and dropping it stops the query.
    pub async fn batches(
        &self,
        session: SessionContext,
        sql: String,
        params: Option<ParamValues>,
    ) -> Result<Batches, ServerError> {
        let permit = self.permit()?;
        let deadline = Instant::now() + self.limits.timeout;
        let (opened, schema) = oneshot::channel();
        // Small: the query runs at most a few batches ahead of a client that reads slowly.
        let (batches, receiver) = mpsc::channel(4);
        let limits = self.limits.clone();
        let work = async move {
            let plan = async {
                let mut frame = session
                    .sql_with_options(&sql, query::engine::read_only())
                    .await
                    .map_err(planning_error)?;
                if let Some(params) = params {
                    frame = frame.with_param_values(params).map_err(planning_error)?;
                }
                frame.execute_stream().await.map_err(execution_error)
            };
            let mut stream = match tokio::time::timeout_at(deadline, plan).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    let _ = opened.send(Err(error));
                    return;
                }
                Err(_) => {
                    let _ = opened.send(Err(over_time(&limits)));
                    return;
                }
            };
            if opened.send(Ok(stream.schema())).is_err() {
                return;
            }
            let mut rows = 0;
            loop {
                let next = tokio::select! {
                    next = tokio::time::timeout_at(deadline, stream.next()) => next,
                    () = batches.closed() => return,
                };
                let batch = match next {
                    Ok(None) => return,
                    Ok(Some(Ok(batch))) => Ok(batch),
                    Ok(Some(Err(error))) => Err(execution_error(error)),
                    Err(_) => Err(over_time(&limits)),
                };
                let batch = match batch {
                    Ok(batch) => batch,
                    Err(error) => {
                        let _ = batches.send(Err(error)).await;
                        return;
                    }
                };
                let room = limits.max_rows - rows;
                let truncated = batch.num_rows() > room;
                let batch = if truncated {
                    tracing::info!(
                        rows = limits.max_rows,
                        "an analyst's answer stopped at the row cap ([server] sql_max_rows)"
                    );
                    batch.slice(0, room)
                } else {
                    batch
                };
                rows += batch.num_rows();
                if batches.send(Ok(batch)).await.is_err() || truncated {
                    return;
                }
            }
        };
        let work = async move {
            work.await;
            drop(permit);
        };
        let (schema, abort) = self.start(work, schema, deadline).await?;
        Ok(Batches {
            schema,
            receiver,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            abort,
            limits: self.limits.clone(),
            ended: false,
        })
    }

    /// Runs `sql` (checked by [`query::guard::check`] already) on `live` and answers it in
    /// `encoding`: an error before the first batch is an error response; after it, the body is
    /// cut short (an incomplete transfer, never a complete-looking partial answer). With
    /// `trailers` (the client sent `TE: trailers`), the answer ends with the
    /// `x-doracost-truncated` trailer.
    pub async fn answer(
        &self,
        live: Arc<LiveEngine>,
        sql: String,
        encoding: Encoding,
        trailers: bool,
    ) -> Result<Response, ServerError> {
        let permit = self.permit()?;
        let (started, first) = oneshot::channel();
        // Small: the query runs at most a few batches ahead of a client that reads slowly.
        let (frames, body) = mpsc::channel(4);
        let deadline = Instant::now() + self.limits.timeout;
        let query = Query {
            live,
            sql,
            encoding,
            trailers,
            limits: self.limits.clone(),
            pool: Arc::clone(&self.pool),
            deadline,
        };
        let work = async move {
            query.run(started, frames).await;
            drop(permit);
        };
        let ((), abort) = self.start(work, first, deadline).await?;
        let body = AnswerBody {
            frames: body,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            abort,
            limits: self.limits.clone(),
            ended: false,
        };
        let mut response = Response::new(Body::new(body));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(encoding.media_type()),
        );
        headers.insert(ROW_LIMIT, HeaderValue::from(self.limits.max_rows));
        if trailers {
            headers.insert(
                header::TRAILER,
                HeaderValue::from_static("x-doracost-truncated"),
            );
        }
        Ok(response)
    }
}

/// One query on its way.
struct Query {
    live: Arc<LiveEngine>,
    sql: String,
    encoding: Encoding,
    trailers: bool,
    limits: SqlLimits,
    pool: Arc<dyn MemoryPool>,
    deadline: Instant,
}

type FrameSender = mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>;

/// What stopped a query's stream early.
enum Stop {
    Failed(ServerError),
    /// The client hung up: nobody to tell.
    Gone,
}

impl Query {
    /// Plans, runs and streams the query: `started` gets the outcome up to the first batch,
    /// `frames` the answer's bytes.
    async fn run(self, started: oneshot::Sender<Result<(), ServerError>>, frames: FrameSender) {
        let mut started = Some(started);
        let outcome = self.stream(&mut started, &frames).await;
        match (outcome, started.take()) {
            (Ok(()), _) | (Err(Stop::Gone), _) => {}
            (Err(Stop::Failed(error)), Some(started)) => {
                let _ = started.send(Err(error));
            }
            (Err(Stop::Failed(error)), None) => {
                tracing::warn!(error = %error, "an analyst's query failed while its answer streamed; the answer was cut short");
                let cut = std::io::Error::other(error.to_string());
                let _ = frames.send(Err(cut)).await;
            }
        }
    }

    async fn stream(
        &self,
        started: &mut Option<oneshot::Sender<Result<(), ServerError>>>,
        frames: &FrameSender,
    ) -> Result<(), Stop> {
        let session = self.live.engine.analyst_session(Arc::clone(&self.pool));
        let planned = self.within(async {
            let frame = session
                .sql_with_options(&self.sql, query::engine::read_only())
                .await
                .map_err(planning_error)?;
            frame.execute_stream().await.map_err(execution_error)
        });
        let mut stream = planned.await??;
        let encoded = |e: arrow::error::ArrowError| {
            Stop::Failed(ServerError::Query(format!("encoding the answer: {e}")))
        };
        let (mut encoder, opening) =
            Encoder::start(self.encoding, stream.schema()).map_err(encoded)?;
        let mut pending = opening;
        let mut ending = Ending::default();
        loop {
            let next = tokio::select! {
                next = self.within(stream.next()) => next?,
                () = frames.closed() => return Err(Stop::Gone),
            };
            let Some(batch) = next else { break };
            let batch = batch.map_err(|e| Stop::Failed(execution_error(e)))?;
            let room = self.limits.max_rows - ending.rows;
            let batch = if batch.num_rows() > room {
                ending.truncated = true;
                batch.slice(0, room)
            } else {
                batch
            };
            ending.rows += batch.num_rows();
            pending.extend(encoder.batch(&batch).map_err(encoded)?);
            // The first batch came: the answer is a 200 from here on.
            if let Some(started) = started.take() {
                let _ = started.send(Ok(()));
            }
            self.send(frames, std::mem::take(&mut pending)).await?;
            if ending.truncated {
                break;
            }
        }
        // Stops the query's work now, not when the client has read the rest.
        drop(stream);
        pending.extend(encoder.finish(ending).map_err(encoded)?);
        if let Some(started) = started.take() {
            let _ = started.send(Ok(()));
        }
        self.send(frames, pending).await?;
        if self.trailers {
            let mut trailer = HeaderMap::new();
            trailer.insert(
                TRUNCATED,
                HeaderValue::from_static(if ending.truncated { "true" } else { "false" }),
            );
            let _ = frames.send(Ok(Frame::trailers(trailer))).await;
        }
        Ok(())
    }

    async fn send(&self, frames: &FrameSender, bytes: Vec<u8>) -> Result<(), Stop> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.within(frames.send(Ok(Frame::data(Bytes::from(bytes)))))
            .await?
            .map_err(|_| Stop::Gone)
    }

    /// `work`, or the time limit's error when the deadline comes first.
    async fn within<T>(&self, work: impl Future<Output = T>) -> Result<T, Stop> {
        tokio::time::timeout_at(self.deadline, work)
            .await
            .map_err(|_| Stop::Failed(over_time(&self.limits)))
    }
}

impl From<ServerError> for Stop {
    fn from(error: ServerError) -> Stop {
        Stop::Failed(error)
    }
}

fn over_time(limits: &SqlLimits) -> ServerError {
    ServerError::OverTime(format!(
        "the query ran past its time limit of {} s ([server] sql_timeout_seconds) and was stopped",
        limits.timeout.as_secs_f64()
    ))
}

/// The batches of a query run by [`Analysts::batches`], cut at its deadline; dropped, it stops
/// the query.
pub struct Batches {
    /// The answer's schema.
    pub schema: SchemaRef,
    receiver: mpsc::Receiver<Result<RecordBatch, ServerError>>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    abort: tokio::task::AbortHandle,
    limits: SqlLimits,
    ended: bool,
}

impl futures::Stream for Batches {
    type Item = Result<RecordBatch, ServerError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.ended = true;
            self.abort.abort();
            return Poll::Ready(Some(Err(over_time(&self.limits))));
        }
        self.receiver.poll_recv(cx)
    }
}

impl Drop for Batches {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

/// The response body: the frames a query sends, cut at the deadline; dropped (the client hung
/// up, or the answer ended), it stops the query.
struct AnswerBody {
    frames: mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    abort: tokio::task::AbortHandle,
    limits: SqlLimits,
    ended: bool,
}

impl http_body::Body for AnswerBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.ended = true;
            self.abort.abort();
            let error = over_time(&self.limits);
            tracing::warn!(error = %error, "an analyst's answer was cut short");
            return Poll::Ready(Some(Err(std::io::Error::other(error.to_string()))));
        }
        self.frames.poll_recv(cx)
    }
}

impl Drop for AnswerBody {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

/// A planning error: the statement's fault (400, with its place when DataFusion has one),
/// unless the lake or the memory limit is.
pub(crate) fn planning_error(error: DataFusionError) -> ServerError {
    if let Some(limited) = limit_or_lake(&error) {
        return limited;
    }
    let message = error.strip_backtrace();
    let position = error
        .diagnostic()
        .and_then(|d| d.span)
        .map(|span| (span.start.line, span.start.column))
        .filter(|(line, _)| *line > 0)
        .or_else(|| query::guard::position_in(&message));
    ServerError::SqlInvalid { message, position }
}

/// An error while the query runs: over the memory limit, the lake unreadable, or the query's
/// own failure on the data.
fn execution_error(error: DataFusionError) -> ServerError {
    limit_or_lake(&error).unwrap_or_else(|| ServerError::SqlFailed(error.strip_backtrace()))
}

fn limit_or_lake(error: &DataFusionError) -> Option<ServerError> {
    let message = error.strip_backtrace();
    // Through a Parquet reader the store's error arrives as text (`ParquetError::General`),
    // out of `find_root`'s reach.
    let lake = matches!(
        error.find_root(),
        DataFusionError::ObjectStore(_) | DataFusionError::IoError(_)
    ) || message.contains("Object Store error");
    if matches!(error.find_root(), DataFusionError::ResourcesExhausted(_)) {
        Some(ServerError::OverMemory(format!(
            "the query needs more memory than analysts' queries have ([server] \
             sql_memory_limit): {message}"
        )))
    } else if lake {
        Some(ServerError::Unavailable(format!(
            "the lake cannot be read: {message}"
        )))
    } else {
        None
    }
}

/// A multi-thread runtime of `threads` workers on a thread of its own, which keeps it until the
/// returned sender is dropped (a runtime must not be dropped inside another's tasks).
fn start_runtime(threads: usize) -> std::io::Result<(tokio::runtime::Handle, oneshot::Sender<()>)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("analyst-sql")
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("analyst-sql-owner".into())
        .spawn(move || {
            runtime.block_on(async {
                let _ = stopped.await;
            });
            runtime.shutdown_background();
        })?;
    Ok((handle, stop))
}
