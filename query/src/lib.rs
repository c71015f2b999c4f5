//! The query layer: one DataFusion `SessionContext` over the lake's Delta tables and the tables
//! config defines, where every metric is a SQL view. Read-only by construction: it runs queries,
//! never DDL or DML. The one thing it writes is the lake's derived tables (`_derived/`, see
//! [`derived`]), caches of its own views. It does not ingest and does not serve.

pub mod allocation;
pub mod baseline;
pub mod cached;
pub mod catalog_doc;
pub mod config_tables;
pub mod cost_tables;
pub mod derived;
pub mod encode;
pub mod engine;
pub mod guard;
pub mod incremental;
pub mod output;
pub mod parts;
pub mod quantile;
pub mod reports;
pub mod rule_pick;
pub mod script;

#[cfg(test)]
mod cost_property_tests;
#[cfg(test)]
mod slt_tests;

pub use engine::{Engine, QueryError, Refreshed};
pub use incremental::EventChange;
