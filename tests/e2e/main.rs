//! End-to-end tests of the `doracost` binary: one test binary, one module per area.

mod alerts;
mod atomic;
mod browser;
mod build;
#[path = "../../ingest/src/cost_explorer/canned_http.rs"]
mod canned_http;
mod config;
mod cost_explorer;
mod costs;
mod cur;
mod derived;
mod dora;
mod events;
mod focus;
mod focus_spec;
mod git;
mod github;
mod github_sample;
mod github_server;
mod github_webhooks;
mod incremental;
mod pagerduty;
#[path = "../../ingest/src/pagerduty/fake_api.rs"]
mod pagerduty_api;
mod pages;
mod pg;
mod polars;
mod repl;
mod s3;
mod sample;
mod server;
mod sql;
mod support;
mod webhooks;
