//! Placeholder until the chart branch lands (same API).
use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartKind { Line, StackedArea, StackedBar, Bar, Stat, Table, Burn, Calendar }

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit { #[default] Number, Count, Hours, Days, PerDay, Percent, Currency }

#[derive(Debug, Clone, PartialEq)]
pub struct Threshold { pub label: String, pub value: f64 }

#[derive(Debug, Clone)]
pub struct ChartSpec {
    pub kind: ChartKind,
    pub title: String,
    pub description: String,
    pub unit: Unit,
    pub currency: String,
    pub target: Option<f64>,
    pub thresholds: Vec<Threshold>,
    pub time_zone: chrono_tz::Tz,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("column `{column}`: {expected}")]
    Column { column: String, expected: String },
    #[error("drawing failed: {0}")]
    Render(String),
}

pub fn svg(_: &ChartSpec, _: &Schema, _: &[RecordBatch]) -> Result<String, ChartError> {
    Err(ChartError::Render("not yet".into()))
}
pub fn png(_: &ChartSpec, _: &Schema, _: &[RecordBatch]) -> Result<Vec<u8>, ChartError> {
    Err(ChartError::Render("not yet".into()))
}
pub fn format_value(value: f64, _: Unit, _: &str) -> String { format!("{value:.1}") }
