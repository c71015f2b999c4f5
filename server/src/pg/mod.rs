//! The PostgreSQL wire protocol endpoint (DESIGN §5; `[server] pg_listen`, default
//! 127.0.0.1:5433; database and user `doracost`): psql, Grafana's PostgreSQL data source,
//! psycopg and JDBC run the same read-only SQL as `POST /api/v1/sql`, through the same guard
//! ([`query::guard`]) and within the same limits and pool ([`crate::analysts::Analysts`]).
//!
//! `pgwire` (through `datafusion-postgres`, whose pg_catalog and Arrow encoding we use) speaks
//! the protocol; this module decides: every connection gets handlers of its own
//! ([`session::Connection`]: a fresh SCRAM state, its own `SET`s), every statement is answered
//! here (client settings, transactions) or checked and run on the engine of the moment.
//!
//! TLS is offered with `[server] pg_tls_cert` and `pg_tls_key` ([`tls`]), and then required of
//! every client. A password is asked for with SCRAM-SHA-256, never in cleartext.

mod auth;
mod catalog;
mod cursor;
mod session;
mod statement;
pub mod tls;

use std::future::Future;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use auth::{PgPassword, USER};
pub use tls::PgTls;

use crate::StartError;
use crate::state::AppState;

/// Connections served at once; one more is closed at once (its client sees the connection end).
const MAX_CONNECTIONS: usize = 64;

/// Binds `listen` for the PostgreSQL endpoint, refusing a non-loopback address unless a
/// password is configured (`[server] pg_password`).
pub async fn bind(
    listen: &str,
    password_configured: bool,
) -> Result<tokio::net::TcpListener, StartError> {
    crate::bind_guarded(listen, password_configured, StartError::NeedsPgPassword).await
}

/// Serves the PostgreSQL endpoint on `listener` until `shutdown` completes; then stops
/// accepting and closes the open connections (a query in flight is stopped with them).
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let places = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
            // Reaps finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (socket, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a PostgreSQL connection failed");
                continue;
            }
        };
        let Ok(place) = Arc::clone(&places).try_acquire_owned() else {
            tracing::warn!(%peer, max = MAX_CONNECTIONS, "a PostgreSQL connection was closed: too many are open");
            continue;
        };
        let handlers = session::Connection::new(state.clone(), peer);
        let tls = state.options().pg_tls.as_ref().map(PgTls::acceptor);
        connections.spawn(async move {
            if let Err(e) = pgwire::tokio::process_socket(socket, tls, handlers).await {
                tracing::debug!(%peer, error = %e, "a PostgreSQL connection ended with an error");
            }
            drop(place);
        });
    }
    connections.shutdown().await;
    tracing::info!("the PostgreSQL endpoint stopped");
}

use datafusion_postgres::pgwire;
