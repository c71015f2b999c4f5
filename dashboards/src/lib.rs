//! Dashboards as code and their charts.
//!
//! Not for: computing metrics (the query crate's views do) or serving pages (the server does).

pub mod chart;
