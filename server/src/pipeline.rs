//! "Ingest, then refresh the derived tables": after `doracost ingest`, the demo's ingest and the
//! server's event commits (where the refresh is coalesced, see [`crate::events`]), the same
//! refresh runs: [`refresh_opened`].

use model::{Config, Lake};
use query::{Engine, EventChange, QueryError, Refreshed};

/// Recomputes the derived tables the lake's new data (or a config change) made stale.
pub async fn refresh_derived(lake: &Lake, config: &Config) -> Result<Vec<Refreshed>, QueryError> {
    // What the ingest before it freed goes back to the system first: glibc keeps it in each
    // thread's arena, and the refresh's peak would stand on top of the ingest's.
    model::memory::release_freed();
    let engine = Engine::open(lake, config).await?;
    refresh_opened(&engine, None).await
}

/// Recomputes the derived tables `engine` found stale: only the rows of the services `change`
/// touched when the engine is right after it (`Engine::refresh_incremental`), else every stale
/// table in full.
pub async fn refresh_opened(
    engine: &Engine,
    change: Option<&EventChange>,
) -> Result<Vec<Refreshed>, QueryError> {
    if let Some(change) = change
        && let Some(done) = engine.refresh_incremental(change).await?
    {
        return Ok(done);
    }
    engine.refresh_derived().await
}
