//! The server's state: the config, the lake, and the query engine over the lake as it is now.
//!
//! The engine is swapped whole when the lake changes (a commit of this server, or of another
//! process's `doracost ingest` into the same lake): a watcher compares the lake's content ids
//! (each table's Delta id and version) with those the engine was opened at, every
//! `poll_interval` or when woken, and opens a new engine when they differ. A request takes the
//! engine of the moment and keeps it (an `Arc`) until it is answered, so it finishes on the lake
//! state it started on.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use model::{Config, Lake};
use query::Engine;
use tokio::sync::{Notify, mpsc};

use crate::StartError;
use crate::analysts::{Analysts, SqlLimits};
use crate::auth::Token;
use crate::error::ServerError;
use crate::events::Submission;
use crate::metrics::Metrics;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// How often the watcher looks for new lake commits.
    pub poll_interval: Duration,
    /// The longest a request may take before it is answered 503.
    pub request_timeout: Duration,
    /// Read the lake's fresh derived tables (else compute every view from the canonical tables).
    pub read_derived: bool,
    /// The bearer token of the write endpoints (`[server] token`, resolved); none on loopback.
    pub token: Option<Token>,
    /// The limits of analysts' SQL (`POST /api/v1/sql` and the PostgreSQL endpoint).
    pub sql: SqlLimits,
    /// The PostgreSQL endpoint's password (`[server] pg_password`, resolved); none on loopback.
    pub pg_password: Option<crate::pg::PgPassword>,
    /// The PostgreSQL endpoint's TLS (`[server] pg_tls_cert` and `pg_tls_key`, read and checked).
    pub pg_tls: Option<crate::pg::PgTls>,
    /// The dashboards: built in, and `[dashboards] dir`'s.
    pub dashboards: Arc<dashboards::Catalog>,
}

impl ServerOptions {
    /// The options `[server]` sets, the token resolved from its secret reference, the dashboards
    /// of `[dashboards] dir` read and checked; the derived
    /// tables read when `read_derived` (the CLI's `DORACOST_DERIVED`).
    pub fn from_config(config: &Config, read_derived: bool) -> Result<ServerOptions, StartError> {
        let server = &config.server;
        let dashboards_dir = config.dashboards.dir.as_deref();
        let seconds = |key: &'static str, value: f64| {
            Duration::try_from_secs_f64(value)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or(StartError::Setting {
                    key,
                    value: value.to_string(),
                    expected: "a positive number of seconds",
                })
        };
        let token = match &server.token {
            None => None,
            Some(secret) => {
                let value = secret
                    .resolve()
                    .map_err(|e| StartError::Token(e.to_string()))?;
                Some(
                    Token::new(value)
                        .ok_or_else(|| StartError::Token("the secret is empty".into()))?,
                )
            }
        };
        let pg_password = match &server.pg_password {
            None => None,
            Some(secret) => {
                let value = secret
                    .resolve()
                    .map_err(|e| StartError::PgPassword(e.to_string()))?;
                Some(
                    crate::pg::PgPassword::new(&value)
                        .ok_or_else(|| StartError::PgPassword("the secret is empty".into()))?,
                )
            }
        };
        let count = |key: &'static str, value: usize| {
            (value > 0).then_some(value).ok_or(StartError::Setting {
                key,
                value: value.to_string(),
                expected: "a whole number above 0",
            })
        };
        let sql = SqlLimits {
            timeout: seconds("sql_timeout_seconds", server.sql_timeout_seconds)?,
            memory_bytes: query::engine::parse_size(&server.sql_memory_limit).ok_or_else(|| {
                StartError::Setting {
                    key: "sql_memory_limit",
                    value: server.sql_memory_limit.clone(),
                    expected: "a size such as \"512M\" or \"2G\"",
                }
            })?,
            max_rows: count("sql_max_rows", server.sql_max_rows)?,
            max_concurrent: count("sql_max_concurrent", server.sql_max_concurrent)?,
            threads: count("sql_threads", server.sql_threads)?,
            max_body_bytes: count("sql_max_body_bytes", server.sql_max_body_bytes)?,
        };
        Ok(ServerOptions {
            poll_interval: seconds("poll_seconds", server.poll_seconds)?,
            request_timeout: seconds("request_timeout_seconds", server.request_timeout_seconds)?,
            read_derived,
            token,
            sql,
            pg_password,
            pg_tls: match (&server.pg_tls_cert, &server.pg_tls_key) {
                (Some(cert), Some(key)) => {
                    Some(crate::pg::PgTls::load(cert, key).map_err(StartError::PgTls)?)
                }
                _ => None,
            },
            dashboards: Arc::new(
                dashboards::Catalog::load(dashboards_dir)
                    .map_err(|e| StartError::Dashboards(e.to_string()))?,
            ),
        })
    }
}

/// One opened engine and the lake content it was opened at.
pub struct LiveEngine {
    /// The query engine.
    pub engine: Engine,
    /// Each table's content id when it was opened.
    pub content: BTreeMap<String, String>,
    /// When it was opened.
    pub opened_at: chrono::DateTime<chrono::Utc>,
    /// Answers computed on it (dropped with it: a new lake commit starts an empty cache).
    pub cache: crate::cache::ResponseCache,
}

/// The state every handler shares: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    lake: Lake,
    options: ServerOptions,
    live: ArcSwapOption<LiveEngine>,
    /// Why the last attempt to open an engine failed, while none is open or it is outdated.
    open_error: Mutex<Option<String>>,
    /// Wakes the watcher before its next poll (after this server's own writes).
    wake: Notify,
    /// Wakes the refresher; a wake-up while it runs is kept (one), so refreshes coalesce.
    refresh: Notify,
    /// Posted event bodies on their way to the event writer.
    events: mpsc::Sender<Submission>,
    /// The writer's end, until [`AppState::start`] takes it.
    events_waiting: Mutex<Option<mpsc::Receiver<Submission>>>,
    /// This server's event commits not yet refreshed into the derived tables, oldest first.
    unrefreshed: Mutex<Vec<(Instant, query::EventChange)>>,
    metrics: Metrics,
    /// Where analysts' SQL runs.
    analysts: Analysts,
}

/// How long the watcher waits for the refresh of this server's own event commits before it shows
/// them anyway (computed live, slower).
const REFRESH_WAIT: Duration = Duration::from_secs(30);

impl AppState {
    /// The state over `lake` read with `config`; no engine is open until [`AppState::reload`]
    /// (or the watcher) opens one.
    pub fn new(config: Config, lake: Lake, options: ServerOptions) -> AppState {
        // Bounded: beyond this many bodies waiting for a commit, posts wait for room.
        let (events, events_waiting) = mpsc::channel(4096);
        AppState {
            inner: Arc::new(Inner {
                analysts: Analysts::new(options.sql.clone()),
                config,
                lake,
                options,
                live: ArcSwapOption::const_empty(),
                open_error: Mutex::new(None),
                wake: Notify::new(),
                refresh: Notify::new(),
                events,
                events_waiting: Mutex::new(Some(events_waiting)),
                unrefreshed: Mutex::new(Vec::new()),
                metrics: Metrics::default(),
            }),
        }
    }

    /// The configuration the server was started with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The lake.
    pub fn lake(&self) -> &Lake {
        &self.inner.lake
    }

    /// The options.
    pub fn options(&self) -> &ServerOptions {
        &self.inner.options
    }

    /// The engine of the moment, held by the caller until it is done with it; 503 while none is
    /// open yet.
    pub fn engine(&self) -> Result<Arc<LiveEngine>, ServerError> {
        self.inner.live.load_full().ok_or_else(|| {
            let reason = self
                .open_error()
                .unwrap_or_else(|| "the query engine is still opening the lake".to_owned());
            ServerError::Unavailable(reason)
        })
    }

    /// Why the last engine open failed, if it did.
    pub fn open_error(&self) -> Option<String> {
        self.inner
            .open_error
            .lock()
            .map(|e| e.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    fn set_open_error(&self, error: Option<String>) {
        match self.inner.open_error.lock() {
            Ok(mut slot) => *slot = error,
            Err(poisoned) => *poisoned.into_inner() = error,
        }
    }

    /// The write endpoints' token, when configured.
    pub fn token(&self) -> Option<&Token> {
        self.inner.options.token.as_ref()
    }

    /// Where analysts' SQL runs.
    pub fn analysts(&self) -> &Analysts {
        &self.inner.analysts
    }

    /// The server's own counters.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Hands a checked event body to the event writer; `Err` when it has stopped.
    pub(crate) async fn submit(&self, submission: Submission) -> Result<(), ()> {
        self.inner.events.send(submission).await.map_err(|_| ())
    }

    fn unrefreshed(&self) -> std::sync::MutexGuard<'_, Vec<(Instant, query::EventChange)>> {
        self.inner
            .unrefreshed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records an event commit of this server, for the incremental refresh that follows.
    pub(crate) fn committed(&self, change: query::EventChange) {
        self.unrefreshed().push((Instant::now(), change));
    }

    /// The commits not yet refreshed, merged from the oldest: the longest run of them that `engine`
    /// is exactly at the end of, and how many that is (none when no run matches).
    pub(crate) fn unrefreshed_up_to(&self, engine: &Engine) -> (usize, Option<query::EventChange>) {
        let pending: Vec<query::EventChange> =
            self.unrefreshed().iter().map(|(_, c)| c.clone()).collect();
        let at = |change: &query::EventChange| {
            change
                .versions
                .iter()
                .all(|(table, (_, after))| engine.version_of(table) == Some(*after))
        };
        let mut merged: Option<query::EventChange> = None;
        let mut best = (0, None);
        for (i, change) in pending.iter().enumerate() {
            merged = match &merged {
                None => Some(change.clone()),
                Some(m) => m.then(change),
            };
            let Some(m) = &merged else { break };
            if at(m) {
                best = (i + 1, Some(m.clone()));
            }
        }
        best
    }

    /// Forgets the first `count` unrefreshed commits (refreshed now), or with `None` every one the
    /// engine's tables are at or past (a full refresh covered them).
    pub(crate) fn refreshed(&self, count: Option<usize>, engine: &Engine) {
        let mut pending = self.unrefreshed();
        match count {
            Some(n) => {
                let n = n.min(pending.len());
                pending.drain(..n);
            }
            None => pending.retain(|(_, change)| {
                !change
                    .versions
                    .iter()
                    .all(|(table, (_, after))| engine.version_of(table) >= Some(*after))
            }),
        }
    }

    /// Whether this server committed events whose refresh is still to come (for at most
    /// [`REFRESH_WAIT`]): an engine opened now would compute their views live.
    fn refresh_due(&self) -> bool {
        self.unrefreshed()
            .first()
            .is_some_and(|(at, _)| at.elapsed() < REFRESH_WAIT)
    }

    /// Asks for a derived-table refresh (coalesced with any already asked for).
    pub fn request_refresh(&self) {
        self.inner.refresh.notify_one();
    }

    pub(crate) async fn refresh_wanted(&self) {
        self.inner.refresh.notified().await;
    }

    /// Asks the watcher to look at the lake now (after a write of this server).
    pub fn lake_changed(&self) {
        self.inner.wake.notify_one();
    }

    /// Opens a new engine when the lake's content differs from the current engine's (or none is
    /// open); returns whether it swapped. A failure keeps the current engine and is remembered
    /// for `/readyz`.
    pub async fn reload(&self) -> Result<bool, ServerError> {
        let current = self.inner.live.load_full();
        let names: Vec<String> = match &current {
            Some(live) => live
                .engine
                .derived()
                .iter()
                .map(|d| d.name.clone())
                .collect(),
            None => query::config_tables::persisted_names(&self.inner.config)
                .map_err(|e| self.failed(format!("the metric views: {e}")))?,
        };
        let content = self.lake_content(&names).await?;
        if current.as_ref().is_some_and(|live| live.content == content) {
            return Ok(false);
        }
        // This server's own event commit: wait for its refresh (which wakes the watcher), so
        // the next engine reads fresh derived tables rather than computing every view.
        if current.is_some() && self.refresh_due() {
            return Ok(false);
        }
        let started = Instant::now();
        let engine = Engine::open_with(
            &self.inner.lake,
            &self.inner.config,
            self.inner.options.read_derived,
        )
        .await
        .map_err(|e| self.failed(format!("opening the query engine failed: {e}")))?;
        // `content` was read before the engine opened: a commit in between is in the engine but
        // not in `content`, so the next poll opens another engine (once too many, never missed).
        let live = LiveEngine {
            engine,
            content,
            opened_at: chrono::Utc::now(),
            cache: crate::cache::ResponseCache::default(),
        };
        // Served at once, so a commit is visible as soon as its engine is open; the answers
        // most asked for are computed right after, here (a request for one of them meanwhile
        // waits for that computation rather than starting its own, see `cache`).
        let live = Arc::new(live);
        self.inner.live.store(Some(Arc::clone(&live)));
        self.set_open_error(None);
        let opened = started.elapsed().as_secs_f64();
        tracing::info!(
            seconds = opened,
            "opened the query engine over the lake's latest commits"
        );
        // Given up when the lake changes meanwhile (this engine is about to be replaced, and the
        // warm-up would only slow the refresh that replaces it); the wake-up is passed on.
        tokio::select! {
            warmed = crate::api::warm(&live) => match warmed {
                Ok(()) => tracing::debug!(
                    seconds = started.elapsed().as_secs_f64() - opened,
                    "computed the common answers on the new engine"
                ),
                // Not fatal: the requests will compute (and show) the error themselves.
                Err(e) => tracing::warn!(error = %e, "computing the common answers on the new engine failed"),
            },
            () = self.inner.wake.notified() => {
                tracing::debug!("the lake changed during the warm-up; it stopped");
                self.lake_changed();
            }
        }
        drop(current);
        model::memory::release_freed();
        Ok(true)
    }

    /// The lake's content ids (canonical tables and the derived tables `names`).
    async fn lake_content(
        &self,
        names: &[String],
    ) -> Result<BTreeMap<String, String>, ServerError> {
        self.inner
            .lake
            .content(names)
            .await
            .map_err(|e| self.failed(format!("the lake cannot be read: {e}")))
    }

    fn failed(&self, message: String) -> ServerError {
        tracing::warn!(error = %message, "the query engine was not (re)opened");
        self.set_open_error(Some(message.clone()));
        ServerError::Unavailable(message)
    }

    /// Starts the background tasks: the lake watcher (reloads the engine every `poll_interval`
    /// or when woken), the event writer and the refresher (one refresh at start, for derived
    /// tables a killed refresh or another config left stale). They stop when the returned guard
    /// is dropped; a second call starts only a second watcher.
    ///
    /// The engine is opened on the watcher's thread; its queries run wherever they are awaited.
    pub fn start(&self) -> Background {
        let mut tasks = Vec::new();
        // The watcher reads every table's Delta log each poll and opens engines: CPU work that
        // would stall requests on the runtime's few workers (p99 spikes every poll under load),
        // so it runs on a thread of its own, stopped when the guard drops `stop`.
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = self.clone();
        let watcher = std::thread::Builder::new()
            .name("lake-watcher".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        tracing::error!(error = %e, "the lake watcher cannot start; the server will not follow the lake");
                        return;
                    }
                };
                runtime.block_on(async {
                    tokio::select! {
                        () = watch_lake(state) => {}
                        _ = stopped => {}
                    }
                });
            });
        if let Err(e) = watcher {
            tracing::error!(error = %e, "the lake watcher cannot start; the server will not follow the lake");
        }
        let waiting = match self.inner.events_waiting.lock() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(waiting) = waiting {
            tasks.push(tokio::spawn(crate::events::write_events(
                self.clone(),
                waiting,
            )));
            tasks.push(tokio::spawn(crate::events::refresh_derived(self.clone())));
            self.request_refresh();
        }
        Background {
            tasks,
            _stop_watcher: stop,
        }
    }
}

async fn watch_lake(state: AppState) {
    loop {
        if let Err(e) = state.reload().await {
            tracing::debug!(error = %e, "lake watcher");
        }
        tokio::select! {
            () = tokio::time::sleep(state.inner.options.poll_interval) => {}
            () = state.inner.wake.notified() => {}
        }
    }
}

/// Owns the server's background tasks; dropping it stops them.
pub struct Background {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Dropped with the guard: the watcher thread's runtime then stops.
    _stop_watcher: tokio::sync::oneshot::Sender<()>,
}

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
