//! The bottom of doracost: the typed configuration (`doracost.toml`), the canonical Arrow schemas,
//! exact money, and the lake of Delta tables with its idempotent writes. It knows nothing of sources,
//! queries or servers.

pub mod commits;
pub mod config;
mod key_index;
pub mod lake;
pub mod memory;
pub mod money;
pub mod schedule;
pub mod schema;
mod sorted;

pub use commits::{LakeState, LogEntry};
pub use config::Config;
pub use lake::{CostSliceKey, DerivedTable, Lake, LakeError, TableWrite, Touched, WriteOutcome};
pub use schema::Table;
