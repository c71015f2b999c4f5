//! Sources: each module reads one source's own format and maps it to canonical rows (Arrow batches
//! in the schemas of `model::schema`); `pipeline` commits what a source read to the lake, whole or
//! not at all. It does not know about queries.

pub mod cost_explorer;
pub mod cur;
pub mod error;
pub mod events;
mod files;
pub mod focus;
pub mod git;
pub mod github;
pub mod http;
pub mod pagerduty;
pub mod pipeline;
pub mod progress;
pub mod state;
pub mod values;

pub use error::IngestError;
