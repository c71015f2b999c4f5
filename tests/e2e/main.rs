//! End-to-end tests of the `doracost` binary: one test binary, one module per area.

mod config;
mod cost_explorer;
mod dora;
mod events;
mod focus;
mod s3;
mod sample;
mod support;
