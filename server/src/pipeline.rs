//! "Ingest, then refresh the derived tables": after `doracost ingest`, the demo's ingest and the
//! server's event commits (where the refresh is coalesced, see [`crate::events`]), the same
//! refresh runs.

use model::{Config, Lake};
use query::{Engine, QueryError, Refreshed};

/// Recomputes the derived tables the lake's new data (or a config change) made stale.
pub async fn refresh_derived(lake: &Lake, config: &Config) -> Result<Vec<Refreshed>, QueryError> {
    let engine = Engine::open(lake, config).await?;
    engine.refresh_derived().await
}
