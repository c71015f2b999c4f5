//! Dashboards as code and their charts (DESIGN §5): pages of panels written in TOML
//! (`dashboards/builtin/*.toml`, and a team's own in `[dashboards] dir`), each panel a SQL query
//! over the views with the page's choices bound as values; run concurrently, drawn with
//! `plotters` (SVG in pages, PNG for email) and laid out as one HTML page.
//!
//! Not for: computing metrics (the views of `query` do) or serving pages (`server` does).

pub mod cells;
pub mod chart;
pub mod page;
pub mod report;
pub mod run;
pub mod selection;
pub mod spec;

pub use page::{PageContext, page_path, render};
pub use report::{ReportFormat, report};
pub use run::{PanelResult, Rows, latest_complete_month, run_page, run_panel};
pub use selection::{Selection, SelectionError};
pub use spec::{Catalog, Dashboard, Panel, PanelKind, SpecError};
